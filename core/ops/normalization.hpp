// batch_norm2d: batch normalization over the N, H, W axes of NCHW input (PyTorch's F.batch_norm on 4-D
// input), its named backward. Kernels: core/kernels/batch_norm2d.hpp.
#pragma once

#include <vector>

#include "core/autograd/tape.hpp"
#include "core/kernels/batch_norm2d.hpp"

namespace tg {

struct BatchNorm2dOptions {
  float eps = 1e-5f;      // added to the variance, > 0
  float momentum = 0.1f;  // running = (1 - momentum) * running + momentum * batch, in [0, 1]
  bool training = true;   // batch statistics (true) or the running ones (false)
  // The running statistics [C]: handles to buffers (BatchNorm2d's), so the update reaches them. Both or
  // neither; required when not training.
  Tensor running_mean{};
  Tensor running_var{};
};

// x [N, C, H, W], weight and bias [C] (required) -> [N, C, H, W]:
//   y = (x - mean) / sqrt(var + eps) * weight + bias, per channel.
// training: mean and var are the batch's (the biased variance, over N*H*W values, at least 2 of them); the
// running statistics, when given, are updated in place and off the tape: running_mean = (1 - momentum) *
// running_mean + momentum * mean, running_var likewise with the unbiased variance (var * n / (n - 1)).
// Otherwise: mean and var are running_mean and running_var, left unchanged.
// tg::Error naming batch_norm2d and the shapes on bad input.
Tensor batch_norm2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const BatchNorm2dOptions& o);

// d(out) -> {dx, dweight, dbias}, from x and the per-channel mean and invstd = 1 / sqrt(var + eps) the
// forward normalized with; `training` says whether they were the batch's (then dx goes through them: dx =
// weight * invstd * (dy - mean(dy) - xhat * mean(dy * xhat))) or fixed (dx = weight * invstd * dy).
std::vector<Array> batch_norm2d_backward(const Array& dout, const Array& x, const Array& weight,
                                         const std::vector<float>& mean, const std::vector<float>& invstd,
                                         bool training);

}  // namespace tg
