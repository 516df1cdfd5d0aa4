// Elementwise ops: + - * / with numpy broadcasting, scalar variants, pointwise nonlinearities, dropout; and
// the broadcasting helpers for writing ops. Each op: a forward, a named backward, one line that records them.
#pragma once

#include <cstdint>
#include <vector>

#include "core/autograd/tape.hpp"

namespace tg {

class Generator;

// ---- elementwise, numpy broadcasting (core/ops/elementwise.cpp) ----------------------------------------
// Each backward returns one gradient per input, in input order, no_gradient() for an input that needs none.
Tensor operator+(const Tensor& a, const Tensor& b);
std::vector<Array> add_backward(const Array& dout, const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
std::vector<Array> sub_backward(const Array& dout, const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
std::vector<Array> mul_backward(const Array& dout, const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
std::vector<Array> div_backward(const Array& dout, const Tensor& a, const Tensor& b);

// ---- with a float on either side: no broadcasting, no extra tensor ----
Tensor operator+(const Tensor& a, float s);
Tensor operator+(float s, const Tensor& a);
std::vector<Array> add_scalar_backward(const Array& dout);
Tensor operator-(const Tensor& a, float s);
std::vector<Array> sub_scalar_backward(const Array& dout);
Tensor operator-(float s, const Tensor& a);
std::vector<Array> rsub_scalar_backward(const Array& dout);
Tensor operator*(const Tensor& a, float s);
Tensor operator*(float s, const Tensor& a);
std::vector<Array> mul_scalar_backward(const Array& dout, float s);
Tensor operator/(const Tensor& a, float s);
std::vector<Array> div_scalar_backward(const Array& dout, float s);
Tensor operator/(float s, const Tensor& a);
std::vector<Array> rdiv_scalar_backward(const Array& dout, const Array& a, float s);
Tensor operator-(const Tensor& a);
std::vector<Array> neg_backward(const Array& dout);

// ---- pointwise nonlinearities (y is the op's output) ----
Tensor relu(const Tensor& x);
std::vector<Array> relu_backward(const Array& dout, const Array& y);
Tensor sigmoid(const Tensor& x);
std::vector<Array> sigmoid_backward(const Array& dout, const Array& y);
Tensor tanh(const Tensor& x);
std::vector<Array> tanh_backward(const Array& dout, const Array& y);
Tensor exp(const Tensor& x);
std::vector<Array> exp_backward(const Array& dout, const Array& y);
Tensor log(const Tensor& x);
std::vector<Array> log_backward(const Array& dout, const Array& x);
// x for x > 0, slope * x otherwise
Tensor leaky_relu(const Tensor& x, float slope = 0.01f);
std::vector<Array> leaky_relu_backward(const Array& dout, const Array& x, float slope);
// min(max(x, 0), 6), as torch.nn.ReLU6 (NaN passes through, as in PyTorch)
Tensor relu6(const Tensor& x);
std::vector<Array> relu6_backward(const Array& dout, const Array& y);
// Zeroes each element with probability p and scales the rest by 1 / (1 - p) (inverted dropout), with a mask
// drawn from `gen`. p in [0, 1).
Tensor dropout(const Tensor& x, float p, Generator& gen);
// mask: the forward's 0 or 1 / (1 - p) per element
std::vector<Array> dropout_backward(const Array& dout, const Array& mask);

// ---- helpers for writing ops ---------------------------------------------------------------------------
// numpy broadcast of two shapes; throws tg::Error naming `op` when they do not broadcast.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
// Sums a broadcast gradient back to `shape` (over leading axes and axes where shape has 1).
Array sum_to_shape(const Array& grad, const Shape& shape);

}  // namespace tg
