// Differentiable ops. Each validates its inputs first and throws tg::Error naming the op and the shapes;
// each records through make_op, with its backward a call to a named function in the same .cpp.
#pragma once

#include <cstdint>
#include <vector>

#include "core/autograd/tape.hpp"
#include "core/ops/conv2d.hpp"
#include "core/ops/pooling.hpp"

namespace tg {

class Generator;

// ---- elementwise, numpy broadcasting (core/ops_elementwise.cpp) ----------------------------------------
Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, float s);
Tensor operator+(float s, const Tensor& a);
Tensor operator-(const Tensor& a, float s);
Tensor operator-(float s, const Tensor& a);
Tensor operator*(const Tensor& a, float s);
Tensor operator*(float s, const Tensor& a);
Tensor operator/(const Tensor& a, float s);
Tensor operator/(float s, const Tensor& a);
Tensor operator-(const Tensor& a);

Tensor relu(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
// x for x > 0, slope * x otherwise
Tensor leaky_relu(const Tensor& x, float slope = 0.01f);
// Zeroes each element with probability p and scales the rest by 1 / (1 - p) (inverted dropout), with a mask
// drawn from `gen`. p in [0, 1).
Tensor dropout(const Tensor& x, float p, Generator& gen);

// ---- reductions and shapes (core/ops_shape.cpp) --------------------------------------------------------
Tensor sum(const Tensor& x);   // to a 0-d scalar
Tensor mean(const Tensor& x);  // to a 0-d scalar
// New shape with the same number of elements; at most one -1, inferred.
Tensor reshape(const Tensor& x, const std::vector<std::int64_t>& shape);
// [N, ...] -> [N, prod(...)]
Tensor flatten(const Tensor& x);

// ---- matrix products (core/ops_linear.cpp) -------------------------------------------------------------
// [n, k] x [k, m] -> [n, m]
Tensor matmul(const Tensor& a, const Tensor& b);
// x [N, in], w [out, in], b [out] or an undefined Tensor{} -> x w^T + b, [N, out]
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b);

// ---- softmax and losses (core/ops_loss.cpp) ------------------------------------------------------------
Tensor log_softmax(const Tensor& x);  // along the last axis
Tensor softmax(const Tensor& x);      // along the last axis
// logits [N, C], labels N ints in [0, C): mean over N of -log_softmax(logits)[i, labels[i]]
Tensor cross_entropy(const Tensor& logits, const std::vector<int>& labels);
// mean((pred - target)^2); shapes must be equal
Tensor mse_loss(const Tensor& pred, const Tensor& target);

// ---- helpers for writing ops ---------------------------------------------------------------------------
// numpy broadcast of two shapes; throws tg::Error naming `op` when they do not broadcast.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
// Sums a broadcast gradient back to `shape` (over leading axes and axes where shape has 1).
Array sum_to_shape(const Array& grad, const Shape& shape);

}  // namespace tg
