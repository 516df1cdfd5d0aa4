// Max pooling kernels on raw buffers: [planes, H, W] -> [planes, Hout, Wout], with each window's argmax.
//
// Kernel names (all of core/kernels/): <op>_<variant>_<pass>. <op> is the op of core/ops/ the kernel
// computes; <variant> its algorithm: reference (the plain definition the others are tested against), im2col,
// direct, depthwise, argmax, rows, simd, lanes; <pass> is forward or backward, or stats for a reduction a
// forward runs first (batch_norm2d_lanes_stats). <op>_<variant>_applies says whether a variant takes a
// geometry. A variant's internal cases add a suffix (avg_pool2d_rows_forward_2x2). Helpers that compute no op
// keep their own names (sgemm, gemm_avx512, im2col, col2im, tg::simd).
#pragma once

#include <cstddef>
#include <cstdint>

namespace tg {

struct Pool2dGeometry {
  std::size_t planes, h, w;  // input [N, C, H, W] seen as N*C planes of H x W
  std::size_t kh, kw, stride_h, stride_w, pad_h, pad_w;
  std::size_t h_out, w_out;  // floor division: windows that do not fit are dropped

  // Cell (i, j) of output (oh, ow)'s window over the padded input: its flat index in an input plane, or -1
  // when it lies in the padding (the reference kernels' one rule for the window).
  std::ptrdiff_t cell(std::size_t oh, std::size_t ow, std::size_t i, std::size_t j) const {
    const auto ih = static_cast<std::ptrdiff_t>(oh * stride_h + i) - static_cast<std::ptrdiff_t>(pad_h);
    const auto iw = static_cast<std::ptrdiff_t>(ow * stride_w + j) - static_cast<std::ptrdiff_t>(pad_w);
    if (ih < 0 || iw < 0 || ih >= static_cast<std::ptrdiff_t>(h) || iw >= static_cast<std::ptrdiff_t>(w))
      return -1;
    return ih * static_cast<std::ptrdiff_t>(w) + iw;
  }
};

// out [planes, Hout, Wout]; argmax[k] = flat index within its input plane of out[k]'s maximum. Padded cells
// count as -inf. Branch-free, compile-time window sizes for 2x2, 3x3, 4x4, planes in parallel.
void max_pool2d_argmax_forward(const float* x, const Pool2dGeometry& g, float* out, std::int32_t* argmax);
// dx (overwritten) [planes, H, W]: each dout element goes to its window's argmax.
void max_pool2d_argmax_backward(const float* dout, const std::int32_t* argmax, const Pool2dGeometry& g,
                                float* dx);

// The definition, one window at a time, to test the argmax kernels against: forward gives the max and its
// index (the first maximum on ties; a NaN replaces the maximum, so the last NaN wins, as in PyTorch);
// backward routes each dout to that index (dx overwritten).
void max_pool2d_reference_forward(const float* x, const Pool2dGeometry& g, float* out, std::int32_t* argmax);
void max_pool2d_reference_backward(const float* dout, const float* x, const Pool2dGeometry& g, float* dx);

}  // namespace tg
