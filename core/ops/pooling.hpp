// max_pool2d: 2-D max pooling (PyTorch semantics: -inf padding, floor, first maximum on ties); avg_pool2d
// (zero padding counted in the divisor, floor); global_avg_pool2d; their named backwards. Kernels:
// core/kernels/max_pool2d.hpp, core/kernels/avg_pool2d.hpp.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/autograd/tape.hpp"
#include "core/kernels/avg_pool2d.hpp"
#include "core/kernels/max_pool2d.hpp"

namespace tg {

struct MaxPool2dOptions {
  std::array<int, 2> kernel{2, 2};
  std::array<int, 2> stride{0, 0};   // 0 = the kernel size (PyTorch's default)
  std::array<int, 2> padding{0, 0};  // padded cells count as -inf; at most half the kernel
};

// Validates (throws tg::Error naming max_pool2d and the shapes) and computes the sizes.
Pool2dGeometry max_pool2d_geometry(const Shape& x, const MaxPool2dOptions& options);

// x NCHW -> [N, C, Hout, Wout]
Tensor max_pool2d(const Tensor& x, const MaxPool2dOptions& options = {});

// d(out) -> {dx}: each element of dout goes to the input cell its window took the maximum from.
std::vector<Array> max_pool2d_backward(const Array& dout, const std::vector<std::int32_t>& argmax,
                                       const Pool2dGeometry& g, const Shape& x_shape);

struct AvgPool2dOptions {
  std::array<int, 2> kernel{2, 2};
  std::array<int, 2> stride{0, 0};   // 0 = the kernel size (PyTorch's default)
  std::array<int, 2> padding{0, 0};  // zeros that count in the divisor; at most half the kernel
};

// Validates (throws tg::Error naming avg_pool2d and the shapes) and computes the sizes.
Pool2dGeometry avg_pool2d_geometry(const Shape& x, const AvgPool2dOptions& options);

// x NCHW -> [N, C, Hout, Wout]: each window's sum / (kh * kw), as nn.AvgPool2d (count_include_pad=True)
Tensor avg_pool2d(const Tensor& x, const AvgPool2dOptions& options = {});

// d(out) -> {dx}: every cell of a window gets dout / (kh * kw) (windows that overlap add up).
std::vector<Array> avg_pool2d_backward(const Array& dout, const Pool2dGeometry& g, const Shape& x_shape);

// x [N, C, H, W] -> [N, C]: the mean of each channel (nn.AdaptiveAvgPool2d(1) then flatten)
Tensor global_avg_pool2d(const Tensor& x);

// d(out) [N, C] -> {dx}: every cell of a channel gets dout / (H * W).
std::vector<Array> global_avg_pool2d_backward(const Array& dout, const Shape& x_shape);

}  // namespace tg
