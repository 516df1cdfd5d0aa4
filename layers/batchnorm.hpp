// BatchNorm2d: batch normalization of NCHW batches per channel, as nn.BatchNorm2d (affine, tracking running
// statistics): batch statistics in train(), running statistics in eval().
#pragma once

#include "core/ops/normalization.hpp"
#include "layers/module.hpp"

namespace tg {

struct BatchNormOptions {
  float eps = 1e-5f;      // > 0
  float momentum = 0.1f;  // in [0, 1]
};

class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(std::size_t channels, BatchNormOptions options = {});
  // In training, also folds the batch's statistics into the running ones, once per call.
  Tensor forward(const Tensor& x) override;
  std::string describe() const override;                  // "BatchNorm2d(64)", "BatchNorm2d(64, eps 0.001)"
  Shape output_shape(const Shape& input) const override;  // [C, H, W] -> the same
  std::string to_line() const override;                   // batchnorm2d [eps=E] [momentum=M]

  Tensor weight;               // [C], parameter, ones
  Tensor bias;                 // [C], parameter, zeros
  Tensor running_mean;         // [C], buffer, zeros
  Tensor running_var;          // [C], buffer, ones
  Tensor num_batches_tracked;  // [] (0-d), buffer, float32 (PyTorch's is int64; see layers/checkpoint.hpp)
  std::size_t channels;
  BatchNormOptions options;
};

}  // namespace tg
