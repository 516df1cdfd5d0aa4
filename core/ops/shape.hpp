// Reductions to a scalar (sum, mean) and ops that only change the shape (reshape, flatten).
#pragma once

#include <cstdint>
#include <vector>

#include "core/autograd/tape.hpp"

namespace tg {

// ---- reductions and shapes (core/ops/shape.cpp) --------------------------------------------------------
Tensor sum(const Tensor& x);   // to a 0-d scalar
Tensor mean(const Tensor& x);  // to a 0-d scalar
// New shape with the same number of elements; at most one -1, inferred.
Tensor reshape(const Tensor& x, const std::vector<std::int64_t>& shape);
// [N, ...] -> [N, prod(...)]
Tensor flatten(const Tensor& x);

}  // namespace tg
