// The record of a run's flags in its checkpoint, and --resume's check of a command line against it.
#include "resume_flags.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <system_error>

#include "models.hpp"

namespace tg::cli {
namespace {

// Flags that --resume compares with the checkpoint's: all but --resume itself and kResumeMayChange's.
bool fixed_on_resume(const std::string& flag) {
  return flag != "--resume" &&
         std::find(kResumeMayChange.begin(), kResumeMayChange.end(), flag) == kResumeMayChange.end();
}

// The shortest text that reads back as f: 0.05f is "0.05", 1e-8f "1e-08".
std::string float_text(float f) {
  char buf[48];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, f);
  return ec == std::errc() ? std::string(buf, end) : std::to_string(f);
}

// One item's canonical text: an integer without '+' or leading zeros, another finite number as float_text of
// its value (the optimizer's settings are floats: "5e-2", "0.050" and "0.05" are one value), other text as
// is.
std::string canonical_item(const std::string& text) {
  const char* first = text.data() + (text.size() > 1 && text[0] == '+' ? 1 : 0);
  const char* last = text.data() + text.size();
  if (std::int64_t i = 0; std::from_chars(first, last, i).ptr == last && first != last)
    return std::to_string(i);
  if (std::uint64_t u = 0; std::from_chars(first, last, u).ptr == last && first != last)
    return std::to_string(u);
  double d = 0;
  const auto [end, ec] = std::from_chars(first, last, d);
  if (ec == std::errc() && end == last && first != last && std::isfinite(d))
    return float_text(static_cast<float>(d));
  return text;
}

// Every comma-separated item canonical ("0.9,0.9990" -> "0.9,0.999").
std::string canonical_list(const std::string& text) {
  std::string out;
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = text.find(',', start);
    out += canonical_item(text.substr(start, comma - start));
    if (comma == std::string::npos) return out;
    out += ',';
    start = comma + 1;
  }
}

// A flag's value as the run takes it: the flags whose text names a value in other words first.
std::string canonical(const std::string& flag, const std::string& text, const RunInfo& info) {
  if (flag == "--model") return find_model(text).name;
  if (flag == "--dataset" && text == "auto") return data_spec("auto", info.data_dir).dataset;
  if (flag == "--image-size" && !text.empty()) {
    const auto [rows, cols] = parse_image_size(text);
    return std::to_string(rows) + "x" + std::to_string(cols);
  }
  if (flag == "--augment") {
    try {
      return parse_augmentation(text).text();
    } catch (const Error& e) {
      fail_usage(e.what());
    }
  }
  return canonical_list(text);
}

// "0.05", or for a switch "on" / "off".
std::string shown(const std::string& value, bool is_switch) {
  if (!is_switch) return value;
  return value == "true" ? "on" : "off";
}

}  // namespace

std::string resume_may_change_text() {
  std::string text;
  for (std::size_t i = 0; i < kResumeMayChange.size(); ++i)
    text += (i == 0 ? "" : i + 1 == kResumeMayChange.size() ? " and " : ", ") + kResumeMayChange[i];
  return text;
}

std::map<std::string, std::string> flags_of_run(const RunInfo& info) {
  std::map<std::string, std::string> f{
      {"--model", info.model_name},
      {"--dataset", info.dataset},
      {"--val-split", float_text(static_cast<float>(info.val_split))},
      {"--skip-bad-images", info.skip_bad_images ? "true" : "false"},
      {"--augment", info.augment.text()},
      {"--optimizer", info.optimizer},
      {"--lr", float_text(info.lr)},
      {"--weight-decay", float_text(info.weight_decay)},
      {"--schedule", info.schedule},
      {"--warmup", float_text(static_cast<float>(info.warmup_epochs))},
      {"--batch-size", std::to_string(info.batch_size)},
      {"--limit", std::to_string(info.limit)},
      {"--seed", std::to_string(info.seed)},
  };
  if (info.optimizer == "sgd") {
    f["--momentum"] = float_text(info.momentum);
  } else {
    f["--betas"] = float_text(info.beta1) + "," + float_text(info.beta2);
    f["--eps"] = float_text(info.eps);
  }
  if (info.input.size() == 3) {
    f["--channels"] = std::to_string(info.input[0]);
    f["--image-size"] = std::to_string(info.input[1]) + "x" + std::to_string(info.input[2]);
  }
  return f;
}

std::map<std::string, std::string> record_flags(const TrainOptions& o, const RunInfo& info) {
  const std::map<std::string, std::string> run = flags_of_run(info);
  std::map<std::string, std::string> record;
  for (const auto& [flag, value] : o.flags) {
    if (!fixed_on_resume(flag)) continue;
    const auto it = run.find(flag);
    record[flag] =
        it != run.end() ? it->second : canonical(flag, value.given ? value.value : value.default_value, info);
  }
  return record;
}

void check_resume_flags(const TrainOptions& o, const RunInfo& info) {
  const std::map<std::string, std::string> record = info.flags.empty() ? flags_of_run(info) : info.flags;
  for (const auto& [flag, value] : o.flags) {
    if (!value.given || !fixed_on_resume(flag)) continue;
    const auto it = record.find(flag);
    const std::string theirs = it != record.end() ? it->second : canonical(flag, value.default_value, info);
    if (canonical(flag, value.value, info) == theirs) continue;
    const std::string why = it != record.end()
                                ? "the checkpoint's " + shown(theirs, value.is_switch)
                                : "the checkpoint's run, which predates " + flag +
                                      " and so ran with its default " + shown(theirs, value.is_switch);
    fail_usage("--resume ", o.resume_path, ": ", flag, " ", shown(value.value, value.is_switch),
               " differs from ", why, "; only ", resume_may_change_text(),
               " may change on resume (start a new run to change ", flag, ")");
  }
}

}  // namespace tg::cli
