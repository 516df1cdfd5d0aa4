// 2-D max pooling, keeping each window's argmax for the backward (as PyTorch, first maximum on ties).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/tape.hpp"

namespace tg {

struct MaxPool2dOptions {
  std::array<int, 2> kernel{2, 2};
  std::array<int, 2> stride{0, 0};   // 0 = the kernel size (PyTorch's default)
  std::array<int, 2> padding{0, 0};  // padded cells count as -inf; at most half the kernel
};

struct Pool2dGeometry {
  std::size_t planes, h, w;  // input [N, C, H, W] seen as N*C planes of H x W
  std::size_t kh, kw, stride_h, stride_w, pad_h, pad_w;
  std::size_t h_out, w_out;  // floor division: windows that do not fit are dropped
};

// Validates (throws tg::Error naming max_pool2d and the shapes) and computes the sizes.
Pool2dGeometry max_pool2d_geometry(const Shape& x, const MaxPool2dOptions& options);

// x NCHW -> [N, C, Hout, Wout]
Tensor max_pool2d(const Tensor& x, const MaxPool2dOptions& options = {});

// ---- kernels ----
// out [planes, Hout, Wout]; argmax[k] = flat index within its input plane of out[k]'s maximum.
void max_pool2d_forward(const float* x, const Pool2dGeometry& g, float* out, std::int32_t* argmax);
// dx (overwritten) [planes, H, W]: each dout element goes to its window's argmax.
void max_pool2d_backward(const float* dout, const std::int32_t* argmax, const Pool2dGeometry& g, float* dx);

}  // namespace tg
