// Two ways to extend tapegrad, used by apps/custom_layer.cpp (which makes them model-file layers of the whole
// command line) and tests/layers/test_custom_layer.cpp.
#pragma once

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "tapegrad.hpp"

namespace example {

// (1) A layer composed from existing ops, with a learnable parameter: no backward code at all.
//     PReLU: y = relu(x) - a * relu(-x), one slope `a` shared by all elements (as nn.PReLU()).
class PReLU : public tg::Module {
 public:
  explicit PReLU(float initial_slope = 0.25f)
      : slope(tg::Array(tg::Shape{1}, initial_slope)), initial_slope_(initial_slope) {
    register_parameter("weight", slope);  // "weight", as nn.PReLU names it
  }
  tg::Tensor forward(const tg::Tensor& x) override {
    return tg::relu(x) - slope * tg::relu(-x);  // the tape differentiates this, slope included
  }
  // Elementwise: the shape passes through (without this override, a forward on zeros would find it out).
  tg::Shape output_shape(const tg::Shape& input) const override { return input; }
  // The line that builds this layer again: the initial slope (the trained one is a weight, in checkpoints).
  std::string to_line() const override { return "prelu slope=" + tg::format_number(initial_slope_); }
  std::string describe() const override {
    return "PReLU(initial slope " + tg::format_number(initial_slope_) + ")";
  }
  std::string type_name() const override { return "PReLU"; }  // not "example::PReLU" in tape names

  tg::Tensor slope;

 private:
  float initial_slope_;
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
  tg::Shape output_shape(const tg::Shape& input) const override { return input; }
  std::string to_line() const override { return "silu"; }
  std::string type_name() const override { return "SiLU"; }
};

// Their model-file factories, for tg::register_layer: "prelu [slope=0.25]" and "silu". A key or argument a
// factory does not read ("prelu slop=0.1") is an error naming the file and line.
inline std::unique_ptr<tg::Module> make_prelu(tg::LayerArgs& args) {
  return std::make_unique<PReLU>(args.number("slope", 0.25f));
}
inline std::unique_ptr<tg::Module> make_silu(tg::LayerArgs&) { return std::make_unique<SiLU>(); }

}  // namespace example
