// tapegrad predict: classifies images (PNG, JPEG, BMP; any size or channel count, converted to the model's
// size and channels) with a checkpoint written by `tapegrad train`, printing each image's class name and its
// top-3 probabilities. Returns 0 when every image was classified, 1 when one was not (the others are still
// classified).
#include <algorithm>
#include <cstdio>
#include <numeric>
#include <optional>

#include "commands.hpp"
#include "int8.hpp"
#include "run_checkpoint.hpp"

namespace tg::cli {

int predict(const PredictOptions& o) {
  Checkpoint ckpt = open_checkpoint(o.checkpoint);
  const RunInfo& info = ckpt.info;
  const std::size_t channels = info.input[0];
  if ((channels != 1 && channels != 3) || info.mean.size() != channels || info.std.size() != channels) {
    fail(o.checkpoint, ": takes ", info.input_text(), " inputs with ", info.mean.size(),
         " normalization means; predict reads grayscale (1 channel) and RGB (3 channel) models");
  }
  if (!o.int8 && !o.calibrate_dir.empty())
    fail_usage("--calibrate is for --int8; add --int8 or leave it out");
  std::unique_ptr<Int8Model> int8 =
      o.int8 ? quantize_checkpoint(ckpt, o.checkpoint, o.calibrate_dir, "") : nullptr;
  std::optional<Int8Model::Scope> int8_scope;
  if (int8) int8_scope.emplace(*int8);
  Sequential& model = ckpt.model;
  model.eval();
  NoGradGuard no_grad;
  // --invert auto turns drawings (dark ink on paper) into MNIST-style digits; a model trained on a folder of
  // images takes images as they were in the folder.
  const bool as_is = o.invert == "never" || (o.invert == "auto" && info.dataset == "folder");
  const ImageOptions options{.invert = as_is                ? Invert::Never
                                       : o.invert == "auto" ? Invert::Auto
                                                            : Invert::Always,
                             .mean = info.mean[0],
                             .std = info.std[0],
                             .channels = channels,
                             .channel_mean = info.mean,
                             .channel_std = info.std};
  const std::size_t top = std::min<std::size_t>(static_cast<std::size_t>(o.top), info.classes());
  int failures = 0;
  for (const std::string& path : o.images) {
    try {
      const Tensor x(load_image(path, info.input[1], info.input[2], options));
      const Array probs = softmax(model(x)).value();
      std::vector<std::size_t> order(probs.size());
      std::iota(order.begin(), order.end(), 0);
      std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(top), order.end(),
                        [&](std::size_t a, std::size_t b) { return probs.data()[a] > probs.data()[b]; });
      std::printf("%s: %s  (", path.c_str(), info.class_names[order[0]].c_str());
      for (std::size_t j = 0; j < top; ++j)
        std::printf("%s%s %.2f%%", j ? ", " : "", info.class_names[order[j]].c_str(),
                    100.0 * probs.data()[order[j]]);
      std::printf(")\n");
    } catch (const std::exception& e) {
      std::fprintf(stderr, "tapegrad predict: error: %s\n", e.what());
      ++failures;
    }
  }
  if (int8) warn_saturated(*int8);
  return failures == 0 ? 0 : 1;
}

}  // namespace tg::cli
