// Reductions to a scalar (sum, mean) and ops that only change the shape (reshape, flatten).
#pragma once

#include <cstdint>
#include <vector>

#include "core/autograd/tape.hpp"

namespace tg {

// ---- reductions and shapes (core/ops/shape.cpp) --------------------------------------------------------
Tensor sum(const Tensor& x);  // to a 0-d scalar
// dout (0-d) -> {dx} of x_shape
std::vector<Array> sum_backward(const Array& dout, const Shape& x_shape);
Tensor mean(const Tensor& x);  // to a 0-d scalar
std::vector<Array> mean_backward(const Array& dout, const Shape& x_shape);
// New shape with the same number of elements; at most one -1, inferred.
Tensor reshape(const Tensor& x, const std::vector<std::int64_t>& shape);
// dout in the new shape -> {dx} in x_shape
std::vector<Array> reshape_backward(const Array& dout, const Shape& x_shape);
// [N, ...] -> [N, prod(...)]
Tensor flatten(const Tensor& x);
std::vector<Array> flatten_backward(const Array& dout, const Shape& x_shape);

}  // namespace tg
