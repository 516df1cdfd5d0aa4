// Two ways to extend tapegrad, used by apps/custom_layer.cpp and tests/test_custom_layer.cpp.
#pragma once

#include "tapegrad.hpp"

namespace example {

// (1) A layer composed from existing ops, with a learnable parameter: no backward code at all.
//     PReLU: y = relu(x) - a * relu(-x), one slope `a` shared by all elements (as nn.PReLU()).
class PReLU : public tg::Module {
 public:
  explicit PReLU(float initial_slope = 0.25f) : slope(tg::Array(tg::Shape{1}, initial_slope)) {
    register_parameter("weight", slope);  // "weight", as nn.PReLU names it
  }
  tg::Tensor forward(const tg::Tensor& x) override {
    return tg::relu(x) - slope * tg::relu(-x);  // the tape differentiates this, slope included
  }
  tg::Tensor slope;
};

// (2) A new primitive op: one forward and one backward, recorded with make_op.
//     SiLU: y = x * sigmoid(x);  dy/dx = s + x * s * (1 - s) with s = sigmoid(x).
inline tg::Array silu_backward(const tg::Array& dout, const tg::Array& x) {
  tg::Array dx = tg::Array::from_shape(x.shape());
  for (std::size_t i = 0; i < x.size(); ++i) {
    const float s = 1.f / (1.f + std::exp(-x.data()[i]));
    dx.data()[i] = dout.data()[i] * (s + x.data()[i] * s * (1.f - s));
  }
  return dx;
}

inline tg::Tensor silu(const tg::Tensor& x) {
  tg::Array y = tg::Array::from_shape(x.shape());
  for (std::size_t i = 0; i < y.size(); ++i)
    y.data()[i] = x.value().data()[i] / (1.f + std::exp(-x.value().data()[i]));
  return tg::make_op("silu", std::move(y), {x}, [x](const tg::Array& dout) {
    return std::vector<tg::Array>{silu_backward(dout, x.value())};
  });
}

// ...and its module, so it can sit in a Sequential.
class SiLU : public tg::Module {
 public:
  tg::Tensor forward(const tg::Tensor& x) override { return silu(x); }
};

}  // namespace example
