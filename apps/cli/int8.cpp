// The --int8 flag of eval and predict (int8.hpp).
#include "int8.hpp"

#include <cstdio>
#include <filesystem>

#include "commands.hpp"

namespace tg::cli {

std::unique_ptr<Int8Model> quantize_checkpoint(Checkpoint& ckpt, const std::string& checkpoint_path,
                                               const std::string& calibrate_dir,
                                               const std::string& data_dir) {
  const RunInfo& info = ckpt.info;
  const std::string dir = !calibrate_dir.empty()   ? calibrate_dir
                          : !info.data_dir.empty() ? info.data_dir
                                                   : data_dir;
  const std::string how =
      "give a folder of its training images with --calibrate DIR (MNIST or Fashion-MNIST "
      "IDX files, CIFAR-10 batches, or a folder of images in class folders)";
  if (dir.empty())
    fail_usage("--int8: ", checkpoint_path, " records no training data to calibrate on (an imported model); ",
               how);
  if (!std::filesystem::exists(dir))
    fail_usage("--int8: the calibration data ", dir, " is not there",
               calibrate_dir.empty() ? " (the folder " + checkpoint_path + " trained on)" : std::string(),
               "; ", how);
  std::unique_ptr<ImageDataset> train;
  try {  // labels are not needed: a folder's own classes
    train = open_checkpoint_data(info, checkpoint_path, dir, true, Split::Train, {});
  } catch (const Error& e) {
    fail_usage("--int8: cannot read calibration images from ", dir, ": ", e.what(), "; ", how);
  }
  const std::size_t n = std::min(kCalibrationImages, train->size());
  if (n == 0) fail_usage("--int8: ", dir, " has no training images to calibrate on; ", how);
  Array images = Array::from_shape({n, info.input[0], info.input[1], info.input[2]});
  const std::size_t size = train->example_size();
  for (std::size_t i = 0; i < n; ++i) train->normalized(i * train->size() / n, images.data() + i * size);
  auto model = std::make_unique<Int8Model>(ckpt.model, Tensor(std::move(images)));
  model->release_float_weights();  // from here the model runs through the Int8Model only

  std::size_t convs = 0, linears = 0, folded = 0;
  for (const Int8LayerReport& r : model->report()) {
    if (!r.int8) {
      std::printf("int8: %s%s%s: %s\n", r.name.c_str(), r.source.empty() ? "" : " at ", r.source.c_str(),
                  r.why.c_str());
      continue;
    }
    (r.name.ends_with(".Linear") ? linears : convs) += 1;
    folded += r.folded_batch_norm ? 1 : 0;
  }
  const std::string reason = int8_vnni_unsupported_reason();
  std::printf(
      "int8: %zu conv(s) and %zu linear layer(s) quantized (batch norm folded into %zu), calibrated on "
      "%zu training images of %s; weights %.1f KiB (float32: %.1f KiB); %s\n",
      convs, linears, folded, n, dir.c_str(), static_cast<double>(model->int8_bytes()) / 1024.0,
      static_cast<double>(model->fp32_bytes()) / 1024.0,
      reason.empty() ? "AVX512_VNNI kernels" : reason.c_str());
  return model;
}

void warn_saturated(const Int8Model& model) {
  std::fflush(stdout);  // after what was printed before, when both go to one pipe
  for (const Int8LayerReport& r : model.report()) {
    if (!r.int8 || r.clipped_share() < kSaturationWarning) continue;
    std::fprintf(
        stderr,
        "tapegrad: warning: int8: %s%s%s: %.2f%% of its input values fell outside the calibrated range "
        "[%g, %g] and were clipped; calibrate on images like these with --calibrate DIR\n",
        r.name.c_str(), r.source.empty() ? "" : " at ", r.source.c_str(), 100.0 * r.clipped_share(),
        static_cast<double>(r.min), static_cast<double>(r.max));
  }
}

}  // namespace tg::cli
