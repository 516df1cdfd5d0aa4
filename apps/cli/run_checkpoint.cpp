#include "run_checkpoint.hpp"

#include <nlohmann/json.hpp>

#include <charconv>

namespace tg::cli {
namespace {

using nlohmann::json;

json to_json(const EpochRecord& r) {
  return {{"train_loss", r.train_loss}, {"train_accuracy", r.train_accuracy},
          {"test_loss", r.test_loss},   {"test_accuracy", r.test_accuracy},
          {"seconds", r.seconds},       {"images_per_second", r.images_per_second},
          {"lr_end", r.lr_end}};
}

EpochRecord epoch_from_json(const json& j) {
  EpochRecord r;
  r.train_loss = j.at("train_loss").get<double>();
  r.train_accuracy = j.at("train_accuracy").get<double>();
  r.test_loss = j.at("test_loss").get<double>();
  r.test_accuracy = j.at("test_accuracy").get<double>();
  r.seconds = j.at("seconds").get<double>();
  r.images_per_second = j.at("images_per_second").get<double>();
  r.lr_end = j.at("lr_end").get<float>();
  return r;
}

}  // namespace

std::string RunInfo::input_text() const {
  std::string s;
  for (std::size_t d : input) s += (s.empty() ? "" : "x") + std::to_string(d);
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
      {"optimizer",
       {{"kind", info.optimizer},
        {"lr", info.lr},
        {"momentum", info.momentum},
        {"weight_decay", info.weight_decay}}},
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
    info.input = run.at("input").get<Shape>();
    info.class_names = run.at("class_names").get<std::vector<std::string>>();
    info.mean = run.at("normalization").at("mean").get<std::vector<float>>();
    info.std = run.at("normalization").at("std").get<std::vector<float>>();
    info.dataset = run.at("dataset").get<std::string>();
    info.data_dir = run.at("data_dir").get<std::string>();
    const json& opt = run.at("optimizer");
    info.optimizer = opt.at("kind").get<std::string>();
    info.lr = opt.at("lr").get<float>();
    info.momentum = opt.at("momentum").get<float>();
    info.weight_decay = opt.at("weight_decay").get<float>();
    info.schedule = run.at("schedule").at("kind").get<std::string>();
    info.warmup_epochs = run.at("schedule").at("warmup_epochs").get<double>();
    info.batch_size = run.at("batch_size").get<std::size_t>();
    info.limit = run.at("limit").get<std::size_t>();
    info.steps_per_epoch = run.at("steps_per_epoch").get<std::size_t>();
    info.seed = run.at("seed").get<std::uint64_t>();
    info.world_size = run.at("world_size").get<int>();
    info.epochs = run.at("epochs").get<int>();
    info.epoch = run.at("epoch").get<int>();
    info.step_in_epoch = run.at("step_in_epoch").get<std::size_t>();
    const json& partial = run.at("partial");
    info.partial_loss_sum = partial.at("loss_sum").get<double>();
    info.partial_seconds = partial.at("seconds").get<double>();
    info.partial_seen = partial.at("seen").get<std::size_t>();
    info.partial_correct = partial.at("correct").get<std::size_t>();
    info.generator = run.at("generator").get<std::string>();
    for (const json& e : run.at("history")) info.history.push_back(epoch_from_json(e));
  } catch (const std::exception& e) {  // a missing key (std::out_of_range) or nlohmann::json errors
    fail(path, ": its training metadata is damaged (", e.what(), ")");
  }
  const bool shape_ok =
      info.input.size() == 3 && info.input[0] >= 1 && info.input[1] >= 1 && info.input[2] >= 1;
  if (!shape_ok || info.class_names.empty() || info.mean.size() != info.input[0] ||
      info.std.size() != info.input[0] || info.batch_size == 0 || info.epoch < 0 || info.epochs < 1) {
    fail(path, ": its training metadata is inconsistent (input ", info.input_text(), ", ",
         info.class_names.size(), " classes, ", info.mean.size(), " channel means, batch size ",
         info.batch_size, ", epoch ", info.epoch, " of ", info.epochs, ")");
  }
  for (float s : info.std)
    if (!(s > 0.f)) fail(path, ": its normalization has a standard deviation of ", s);
  return info;
}

Checkpoint open_checkpoint(const std::string& path) {
  const SafetensorsFile file = read_safetensors(path);
  Checkpoint c;
  c.info = from_metadata(file.metadata, path);
  try {
    c.model = model_from_text(c.info.model_text, c.info.input, static_cast<int>(c.info.classes()),
                              c.info.model_source);
  } catch (const Error& e) {
    fail(path, ": the model text it holds no longer builds: ", e.what());
  }
  try {
    c.state = load(c.model, path);
  } catch (const Error& e) {
    fail(path, ": its tensors do not match the model text it holds (", c.info.model_source, "): ", e.what());
  }
  return c;
}

}  // namespace tg::cli
