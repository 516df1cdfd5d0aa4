// --int8 of `tapegrad eval` and `tapegrad predict` (docs/int8.md): the calibration images, the Int8Model, and
// what they print.
#pragma once

#include <memory>
#include <string>

#include "run_checkpoint.hpp"

namespace tg::cli {

// Images of the training split the activation ranges are calibrated on: at most this many, evenly spaced.
inline constexpr std::size_t kCalibrationImages = 512;
// A layer whose input was clipped this often (a share of its values) gets a warning after the run.
inline constexpr double kSaturationWarning = 0.01;

// Quantizes ckpt.model, calibrated on the training split of `calibrate_dir` (or, when empty, of the folder it
// trained on; of `data_dir` for an imported model that records none). Prints one line of what it did.
// tg::Error (a usage error) saying to give --calibrate DIR when there is no calibration data.
std::unique_ptr<Int8Model> quantize_checkpoint(Checkpoint& ckpt, const std::string& checkpoint_path,
                                               const std::string& calibrate_dir, const std::string& data_dir);
// A warning on stderr for each layer whose input saturated (kSaturationWarning).
void warn_saturated(const Int8Model& model);

}  // namespace tg::cli
