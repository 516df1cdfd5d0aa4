// libFuzzer harness for tg::cli::from_metadata (apps/cli/run_checkpoint.cpp), the parser of the metadata of a
// checkpoint written by `tapegrad train`, then the model_from_text call open_checkpoint makes with what it
// parsed (lowered limits, as in fuzz_model_file.cpp).
//
// The input is up to four fields separated by NUL bytes: the "run" JSON, then "model_text", "format" and
// "model"; a field not given takes a valid value (so a seed that is only a run JSON exercises the JSON). The
// run JSON is fed raw rather than inside a safetensors header, where it would be an escaped JSON string that
// most mutations break before from_metadata sees it (fuzz_safetensors covers that outer parser).
//
// Checks: from_metadata either returns or throws tg::Error; what it returns is consistent (input [C, H, W]
// with each >= 1, classes >= 1, one mean and one positive std per channel, batch size >= 1) and round-trips:
// to_metadata of it parses back to the same run. model_from_text on it builds or throws tg::Error.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "cli/run_checkpoint.hpp"
#include "tapegrad.hpp"

namespace {

constexpr const char* kModelText = "conv2d 2 3\nrelu\nmaxpool2d 2\nflatten\nlinear classes\n";

std::vector<std::string> split_fields(const std::uint8_t* data, std::size_t size) {
  std::vector<std::string> fields(1);
  for (std::size_t i = 0; i < size; ++i) {
    if (data[i] == 0 && fields.size() < 4) {
      fields.emplace_back();
    } else {
      fields.back().push_back(static_cast<char>(data[i]));
    }
  }
  return fields;
}

// The fields a reader relies on, compared exactly (floats went through JSON and back).
bool same_run(const tg::cli::RunInfo& a, const tg::cli::RunInfo& b) {
  return a.model_name == b.model_name && a.model_text == b.model_text && a.model_source == b.model_source &&
         a.input == b.input && a.class_names == b.class_names && a.mean == b.mean && a.std == b.std &&
         a.dataset == b.dataset && a.data_dir == b.data_dir && a.optimizer == b.optimizer && a.lr == b.lr &&
         a.momentum == b.momentum && a.weight_decay == b.weight_decay && a.schedule == b.schedule &&
         a.warmup_epochs == b.warmup_epochs && a.batch_size == b.batch_size && a.limit == b.limit &&
         a.steps_per_epoch == b.steps_per_epoch && a.seed == b.seed && a.world_size == b.world_size &&
         a.epochs == b.epochs && a.epoch == b.epoch && a.step_in_epoch == b.step_in_epoch &&
         a.partial_seen == b.partial_seen && a.partial_correct == b.partial_correct &&
         a.generator == b.generator && a.history.size() == b.history.size();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > (1u << 16)) return 0;
  const std::vector<std::string> fields = split_fields(data, size);
  std::map<std::string, std::string> metadata{{"run", fields[0]},
                                              {"model_text", fields.size() > 1 ? fields[1] : kModelText},
                                              {"format", fields.size() > 2 ? fields[2] : tg::cli::kFormat},
                                              {"model", fields.size() > 3 ? fields[3] : "fuzz"}};
  tg::cli::RunInfo info;
  try {
    info = tg::cli::from_metadata(metadata, "fuzz.safetensors");
  } catch (const tg::Error&) {
    return 0;  // rejected input: the expected outcome for most mutations
  }
  const bool consistent = info.input.size() == 3 && info.input[0] >= 1 && info.input[1] >= 1 &&
                          info.input[2] >= 1 && info.classes() >= 1 && info.mean.size() == info.input[0] &&
                          info.std.size() == info.input[0] && info.batch_size >= 1;
  if (!consistent) std::abort();
  for (float s : info.std)
    if (!(s > 0.f)) std::abort();

  // What train writes back into its next checkpoint must read again as the same run.
  tg::cli::RunInfo again;
  try {
    again = tg::cli::from_metadata(tg::cli::to_metadata(info), "again.safetensors");
  } catch (const tg::Error&) {
    std::abort();
  }
  if (!same_run(info, again)) std::abort();

  // open_checkpoint's next step: the model its text describes for the input and classes it read.
  tg::ModelFileLimits limits;
  limits.max_bytes = 4096;
  limits.max_layers = 64;
  limits.max_parameters = 100000;
  limits.max_output_elements = 100000;
  try {
    (void)tg::model_from_text(info.model_text, info.input, static_cast<int>(info.classes()),
                              info.model_source, limits);
  } catch (const tg::Error&) {
  }
  return 0;
}
