// Matrix products through SGEMM: matmul and linear (fully connected).
#pragma once

#include <cstdint>
#include <vector>

#include "core/autograd/tape.hpp"

namespace tg {

// ---- matrix products (core/ops/linear.cpp) -------------------------------------------------------------
// [n, k] x [k, m] -> [n, m]
Tensor matmul(const Tensor& a, const Tensor& b);
// x [N, in], w [out, in], b [out] or an undefined Tensor{} -> x w^T + b, [N, out]
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b);

}  // namespace tg
