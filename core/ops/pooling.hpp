// max_pool2d: 2-D max pooling (PyTorch semantics: -inf padding, floor, first maximum on ties), its named
// backward. Kernels: core/kernels/max_pool2d.hpp.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/autograd/tape.hpp"
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

}  // namespace tg
