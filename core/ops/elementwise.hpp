// Elementwise ops: + - * / with numpy broadcasting, scalar variants, pointwise nonlinearities, dropout; and
// the broadcasting helpers for writing ops. Each op: a forward, a named backward, one line that records them.
#pragma once

#include <cstdint>
#include <vector>

#include "core/autograd/tape.hpp"

namespace tg {

class Generator;

// ---- elementwise, numpy broadcasting (core/ops/elementwise.cpp) ----------------------------------------
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


// ---- helpers for writing ops ---------------------------------------------------------------------------
// numpy broadcast of two shapes; throws tg::Error naming `op` when they do not broadcast.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
// Sums a broadcast gradient back to `shape` (over leading axes and axes where shape has 1).
Array sum_to_shape(const Array& grad, const Shape& shape);

}  // namespace tg
