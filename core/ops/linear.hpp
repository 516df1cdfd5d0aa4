// Matrix products through SGEMM: matmul and linear (fully connected).
#pragma once

#include <cstdint>
#include <vector>

#include "core/autograd/tape.hpp"

namespace tg {

// ---- matrix products (core/ops/linear.cpp) -------------------------------------------------------------
// [n, k] x [k, m] -> [n, m]
Tensor matmul(const Tensor& a, const Tensor& b);
// d(out) [n, m] -> {da [n, k], db [k, m]}
std::vector<Array> matmul_backward(const Array& dout, const Tensor& a, const Tensor& b);
// x [N, in], w [out, in], b [out] or an undefined Tensor{} -> x w^T + b, [N, out]
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b);
// dy [N, out] -> {dx, dw[, db]} (db only when b is defined)
// bf16: dx and dw products in bf16 (as the forward ran them under tg::set_precision(Precision::bf16)).
std::vector<Array> linear_backward(const Array& dy, const Tensor& x, const Tensor& w, const Tensor& b,
                                   bool bf16 = false);

}  // namespace tg
