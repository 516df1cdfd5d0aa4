// Average pooling kernels on raw buffers: [planes, H, W] -> [planes, Hout, Wout] (PyTorch's nn.AvgPool2d
// defaults: zero padding that counts in the divisor, floor output size), and the global average over each
// plane, [planes, H, W] -> [planes].
//
// Kernel names (all of core/kernels/): <op>_<variant>_<pass>. <op> is the op of core/ops/ the kernel
// computes; <variant> its algorithm: reference (the plain definition the others are tested against), im2col,
// direct, depthwise, argmax, rows, simd, lanes; <pass> is forward or backward, or stats for a reduction a
// forward runs first (batch_norm2d_lanes_stats). <op>_<variant>_applies says whether a variant takes a
// geometry. A variant's internal cases add a suffix (avg_pool2d_rows_forward_2x2). Helpers that compute no op
// keep their own names (sgemm, gemm_avx512, im2col, col2im, tg::simd).
#pragma once

#include <cstddef>

#include "core/kernels/max_pool2d.hpp"  // Pool2dGeometry

namespace tg {

// out [planes, Hout, Wout] = the window's sum / (kh * kw): padded cells are zeros that count in the divisor
// (count_include_pad; with floor sizes every window lies inside the padded input, so the divisor is always
// kh * kw). Sums of whole rows first (contiguous, vectorized), a special case for 2x2 stride 2 without
// padding, planes in parallel.
void avg_pool2d_rows_forward(const float* x, const Pool2dGeometry& g, float* out);
// dx (overwritten) [planes, H, W]: every cell of a window gets dout / (kh * kw); overlapping windows add up.
void avg_pool2d_rows_backward(const float* dout, const Pool2dGeometry& g, float* dx);

// The definition, one window and one cell at a time over the padded input, to test the rows kernels against.
// With a window of the whole plane (kh = H, kw = W, no padding) they are also the global pool's reference.
void avg_pool2d_reference_forward(const float* x, const Pool2dGeometry& g, float* out);
void avg_pool2d_reference_backward(const float* dout, const Pool2dGeometry& g, float* dx);

// out [planes] = the mean of each plane of x [planes, plane_size] (a vector sum, simd::sum_row); planes in
// parallel.
void global_avg_pool2d_simd_forward(const float* x, std::size_t planes, std::size_t plane_size, float* out);
// dx (overwritten) [planes, plane_size] = dout[plane] / plane_size.
void global_avg_pool2d_simd_backward(const float* dout, std::size_t planes, std::size_t plane_size,
                                     float* dx);

}  // namespace tg
