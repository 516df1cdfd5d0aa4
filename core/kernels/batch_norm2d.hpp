// Batch normalization kernels on raw NCHW buffers, one channel at a time: x [N, C, H, W] is seen as C
// channels of N blocks of H*W contiguous floats (block n of channel c starts at (n * C + c) * H*W).
//
// Kernel names (all of core/kernels/): <op>_<variant>_<pass>. <op> is the op of core/ops/ the kernel
// computes; <variant> its algorithm: reference (the plain definition the others are tested against), im2col,
// direct, depthwise, argmax, rows, simd, lanes; <pass> is forward or backward, or stats for a reduction a
// forward runs first (batch_norm2d_lanes_stats). <op>_<variant>_applies says whether a variant takes a
// geometry. A variant's internal cases add a suffix (avg_pool2d_rows_forward_2x2). Helpers that compute no op
// keep their own names (sgemm, gemm_avx512, im2col, col2im, tg::simd).
#pragma once

#include <cstddef>

namespace tg {

struct BatchNorm2dGeometry {
  std::size_t n, c, hw;                         // batch, channels, H * W
  std::size_t count() const { return n * hw; }  // values per channel
};

// ---- lanes: a channel's sums in 32 independent double accumulators (vectorized), channels in parallel ----
// mean[c], var[c] [C]: the channel's mean and BIASED variance, two passes (the mean, then the squared
// deviations from it) with double accumulators, so a channel of one repeated value gets var exactly 0.
// Channels in parallel.
void batch_norm2d_lanes_stats(const float* x, const BatchNorm2dGeometry& g, float* mean, float* var);
// y [N, C, H, W] = (x - mean[c]) * (weight[c] * invstd[c]) + bias[c]; mean, invstd, weight, bias [C].
// Channels in parallel.
void batch_norm2d_lanes_forward(const float* x, const BatchNorm2dGeometry& g, const float* mean,
                                const float* invstd, const float* weight, const float* bias, float* y);
// From dy, x [N, C, H, W] and the statistics the forward normalized with (mean, invstd [C]):
// dweight[c] = sum(dy * xhat), dbias[c] = sum(dy) (xhat = (x - mean) * invstd), and dx [N, C, H, W]:
//   training (batch statistics): dx = weight * invstd * (dy - mean(dy) - xhat * mean(dy * xhat))
//   otherwise (fixed statistics): dx = weight * invstd * dy.
// One pass for the two sums (double accumulators), one for dx; channels in parallel. All outputs overwritten.
void batch_norm2d_lanes_backward(const float* dy, const float* x, const BatchNorm2dGeometry& g,
                                 const float* mean, const float* invstd, const float* weight, bool training,
                                 float* dx, float* dweight, float* dbias);

// ---- reference: the definitions, element by element on one thread, to test the lanes kernels against ----
void batch_norm2d_reference_stats(const float* x, const BatchNorm2dGeometry& g, float* mean, float* var);
void batch_norm2d_reference_forward(const float* x, const BatchNorm2dGeometry& g, const float* mean,
                                    const float* invstd, const float* weight, const float* bias, float* y);
void batch_norm2d_reference_backward(const float* dy, const float* x, const BatchNorm2dGeometry& g,
                                     const float* mean, const float* invstd, const float* weight,
                                     bool training, float* dx, float* dweight, float* dbias);

}  // namespace tg
