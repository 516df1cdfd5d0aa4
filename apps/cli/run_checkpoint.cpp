#include "run_checkpoint.hpp"

#include <nlohmann/json.hpp>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>

#include "commands.hpp"

namespace tg::cli {
namespace {

using nlohmann::json;

json to_json(const EpochRecord& r) {
  return {{"train_loss", r.train_loss}, {"train_accuracy", r.train_accuracy},
          {"test_loss", r.test_loss},   {"test_accuracy", r.test_accuracy},
          {"seconds", r.seconds},       {"images_per_second", r.images_per_second},
          {"lr_end", r.lr_end}};
}

// A JSON number as T, or tg::Error: json::get<T>() converts out-of-range values with a plain cast, which is
// undefined behaviour from floating point to an integer (1e20 -> int) and gives inf from a double above the
// largest float, which to_metadata would write back as null. Integers must be written as whole numbers in
// T's range; floating-point values must be finite in T.
template <class T>
T number(const json& j, const std::string& what) {
  if constexpr (std::is_integral_v<T>) {
    if (j.is_number_unsigned()) {
      const auto v = j.get<std::uint64_t>();
      if (std::in_range<T>(v)) return static_cast<T>(v);
    } else if (j.is_number_integer()) {
      const auto v = j.get<std::int64_t>();
      if (std::in_range<T>(v)) return static_cast<T>(v);
    }
    fail("'", what, "' is ", j.dump(), ", not a whole number from ", +std::numeric_limits<T>::min(), " to ",
         +std::numeric_limits<T>::max());
  } else {
    if (j.is_number()) {
      const double v = j.get<double>();
      if (std::isfinite(v) && std::abs(v) <= static_cast<double>(std::numeric_limits<T>::max()))
        return static_cast<T>(v);
    }
    fail("'", what, "' is ", j.dump(), ", not a finite number");
  }
}

template <class T>
T number_at(const json& object, const std::string& key) {
  return number<T>(object.at(key), key);
}

template <class T>
std::vector<T> numbers_at(const json& object, const std::string& key) {
  const json& array = object.at(key);
  if (!array.is_array()) fail("'", key, "' is ", array.type_name(), ", not an array of numbers");
  std::vector<T> out;
  for (const json& v : array) out.push_back(number<T>(v, key));
  return out;
}

EpochRecord epoch_from_json(const json& j) {
  EpochRecord r;
  r.train_loss = number_at<double>(j, "train_loss");
  r.train_accuracy = number_at<double>(j, "train_accuracy");
  r.test_loss = number_at<double>(j, "test_loss");
  r.test_accuracy = number_at<double>(j, "test_accuracy");
  r.seconds = number_at<double>(j, "seconds");
  r.images_per_second = number_at<double>(j, "images_per_second");
  r.lr_end = number_at<float>(j, "lr_end");
  return r;
}

// sgd: {kind, lr, momentum, weight_decay} (as tapegrad-train-2 has always been); adam and adamw: {kind, lr,
// beta1, beta2, eps, weight_decay}.
json optimizer_json(const RunInfo& info) {
  json j = {{"kind", info.optimizer}, {"lr", info.lr}, {"weight_decay", info.weight_decay}};
  if (info.optimizer == "sgd") {
    j["momentum"] = info.momentum;
  } else {
    j["beta1"] = info.beta1;
    j["beta2"] = info.beta2;
    j["eps"] = info.eps;
  }
  return j;
}

}  // namespace

std::string RunInfo::input_text() const {
  std::string s;
  for (std::size_t i = 0; i < input.size(); ++i) {
    if (i > 0) s += 'x';
    s += std::to_string(input[i]);
  }
  return s;
}

Shape parse_input_shape(const std::string& text) {
  Shape shape;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t end = std::min(text.find('x', start), text.size());
    std::size_t value = 0;
    const auto [ptr, ec] = std::from_chars(text.data() + start, text.data() + end, value);
    if (ec != std::errc() || ptr != text.data() + end || value == 0 || value > (1u << 20))
      fail("--input ", text, ": expected CxHxW, e.g. 1x28x28 or 3x32x32 (each 1 to 1048576)");
    shape.push_back(value);
    start = end + 1;
  }
  if (shape.size() != 3 && shape.size() != 1)
    fail("--input ", text, ": expected CxHxW, e.g. 1x28x28 (or F for a flat input of F features)");
  return shape;
}

std::map<std::string, std::string> to_metadata(const RunInfo& info) {
  json history = json::array();
  for (const EpochRecord& r : info.history) history.push_back(to_json(r));
  const json run = {
      {"model_source", info.model_source},
      {"input", info.input},
      {"class_names", info.class_names},
      {"normalization", {{"mean", info.mean}, {"std", info.std}}},
      {"dataset", info.dataset},
      {"data_dir", info.data_dir},
      {"val_split", info.val_split},
      {"skip_bad_images", info.skip_bad_images},
      {"augment", info.augment.text()},
      {"optimizer", optimizer_json(info)},
      {"schedule", {{"kind", info.schedule}, {"warmup_epochs", info.warmup_epochs}}},
      {"batch_size", info.batch_size},
      {"limit", info.limit},
      {"steps_per_epoch", info.steps_per_epoch},
      {"seed", info.seed},
      {"world_size", info.world_size},
      {"epochs", info.epochs},
      {"epoch", info.epoch},
      {"step_in_epoch", info.step_in_epoch},
      {"partial",
       {{"loss_sum", info.partial_loss_sum},
        {"seconds", info.partial_seconds},
        {"seen", info.partial_seen},
        {"correct", info.partial_correct}}},
      {"generator", info.generator},
      {"history", history},
      {"flags", info.flags},
  };
  std::map<std::string, std::string> meta{{"format", kFormat},
                                          {"model", info.model_name},
                                          {"model_text", info.model_text},
                                          {"run", run.dump()},
                                          {"epoch", std::to_string(info.epoch)}};
  if (!info.history.empty()) meta["test_accuracy"] = std::to_string(info.history.back().test_accuracy);
  return meta;
}

RunInfo from_metadata(const std::map<std::string, std::string>& metadata, const std::string& path) {
  const auto format = metadata.find("format");
  if (format == metadata.end()) {
    const auto model = metadata.find("model");
    if (model != metadata.end()) {
      fail(path, ": this checkpoint of '", model->second,
           "' was written by an older tapegrad and does not describe its model (no model text, input size, "
           "class names or normalization); train it again with `tapegrad train --model ",
           model->second, "`");
    }
    fail(path, ": not a checkpoint written by `tapegrad train` (its metadata has no 'format'; ",
         "files written by tg::save hold tensors only: load them with tg::load into the same model)");
  }
  if (format->second != kFormat)
    fail(path, ": checkpoint format '", format->second, "', expected '", kFormat, "'");
  RunInfo info;
  try {
    info.model_name = metadata.at("model");
    info.model_text = metadata.at("model_text");
    const json run = json::parse(metadata.at("run"));
    info.model_source = run.at("model_source").get<std::string>();
    const std::vector<std::size_t> input = numbers_at<std::size_t>(run, "input");
    info.input.assign(input.begin(), input.end());
    info.class_names = run.at("class_names").get<std::vector<std::string>>();
    info.mean = numbers_at<float>(run.at("normalization"), "mean");
    info.std = numbers_at<float>(run.at("normalization"), "std");
    info.dataset = run.at("dataset").get<std::string>();
    info.data_dir = run.at("data_dir").get<std::string>();
    // Absent from checkpoints written before image folders: MNIST's and CIFAR-10's have no held-out split.
    if (run.contains("val_split")) info.val_split = number_at<double>(run, "val_split");
    if (run.contains("skip_bad_images")) info.skip_bad_images = run.at("skip_bad_images").get<bool>();
    info.augment = parse_augmentation(run.value("augment", "none"));  // absent before augmentation existed
    const json& opt = run.at("optimizer");
    info.optimizer = opt.at("kind").get<std::string>();
    info.lr = number_at<float>(opt, "lr");
    info.weight_decay = number_at<float>(opt, "weight_decay");
    if (info.optimizer == "sgd") {
      info.momentum = number_at<float>(opt, "momentum");
    } else if (info.optimizer == "adam" || info.optimizer == "adamw") {
      info.beta1 = number_at<float>(opt, "beta1");
      info.beta2 = number_at<float>(opt, "beta2");
      info.eps = number_at<float>(opt, "eps");
    } else {
      fail("'kind' is '", info.optimizer, "', not sgd, adam or adamw");
    }
    info.schedule = run.at("schedule").at("kind").get<std::string>();
    info.warmup_epochs = number_at<double>(run.at("schedule"), "warmup_epochs");
    info.batch_size = number_at<std::size_t>(run, "batch_size");
    info.limit = number_at<std::size_t>(run, "limit");
    info.steps_per_epoch = number_at<std::size_t>(run, "steps_per_epoch");
    info.seed = number_at<std::uint64_t>(run, "seed");
    info.world_size = number_at<int>(run, "world_size");
    info.epochs = number_at<int>(run, "epochs");
    info.epoch = number_at<int>(run, "epoch");
    info.step_in_epoch = number_at<std::size_t>(run, "step_in_epoch");
    const json& partial = run.at("partial");
    info.partial_loss_sum = number_at<double>(partial, "loss_sum");
    info.partial_seconds = number_at<double>(partial, "seconds");
    info.partial_seen = number_at<std::size_t>(partial, "seen");
    info.partial_correct = number_at<std::size_t>(partial, "correct");
    info.generator = run.at("generator").get<std::string>();
    for (const json& e : run.at("history")) info.history.push_back(epoch_from_json(e));
    // Absent from checkpoints written before flags were recorded: resume_flags.cpp reads the run instead.
    if (run.contains("flags")) info.flags = run.at("flags").get<std::map<std::string, std::string>>();
  } catch (const std::exception& e) {  // a missing key (std::out_of_range) or nlohmann::json errors
    fail(path, ": its training metadata is damaged (", e.what(), ")");
  }
  const bool shape_ok =
      info.input.size() == 3 && info.input[0] >= 1 && info.input[1] >= 1 && info.input[2] >= 1;
  if (!shape_ok || info.class_names.empty() || info.mean.size() != info.input[0] ||
      info.std.size() != info.input[0] || info.batch_size == 0 || info.val_split < 0 || info.val_split >= 1 ||
      info.epoch < 0 || info.epochs < 1) {
    fail(path, ": its training metadata is inconsistent (input ", info.input_text(), ", ",
         info.class_names.size(), " classes, ", info.mean.size(), " channel means, batch size ",
         info.batch_size, ", epoch ", info.epoch, " of ", info.epochs, ")");
  }
  for (float s : info.std)
    if (!(s > 0.f)) fail(path, ": its normalization has a standard deviation of ", s);
  return info;
}

}  // namespace tg::cli
