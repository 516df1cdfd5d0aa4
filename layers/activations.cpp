#include "layers/activations.hpp"

#include <sstream>

#include "core/base/error.hpp"
#include "core/ops/ops.hpp"
#include "layers/registry.hpp"

namespace tg {

Tensor ReLU::forward(const Tensor& x) { return relu(x); }
Tensor ReLU6::forward(const Tensor& x) { return relu6(x); }
Tensor LeakyReLU::forward(const Tensor& x) { return leaky_relu(x, negative_slope); }
Tensor Sigmoid::forward(const Tensor& x) { return sigmoid(x); }
Tensor Tanh::forward(const Tensor& x) { return tanh(x); }
Tensor Softmax::forward(const Tensor& x) { return softmax(x); }
Tensor LogSoftmax::forward(const Tensor& x) { return log_softmax(x); }
Tensor Flatten::forward(const Tensor& x) { return flatten(x); }

std::string LeakyReLU::describe() const {
  std::ostringstream s;
  s << "LeakyReLU(" << negative_slope << ")";
  return s.str();
}

Dropout::Dropout(float p) : p(p) {
  if (!(p >= 0.f && p < 1.f)) fail("Dropout: p must be in [0, 1), got ", p);
}

Tensor Dropout::forward(const Tensor& x) {
  if (!is_training() || p == 0.f) return x;
  return dropout(x, p, default_generator());
}

std::string Dropout::describe() const {
  std::ostringstream s;
  s << "Dropout(" << p << ")";
  return s.str();
}

// ---- shapes and model-file lines -----------------------------------------------------------------------

namespace {

// Elementwise layers keep the shape; softmax's axis (the last) must exist.
Shape same_shape(const Shape& input) {
  if (input.empty()) fail("expected an input with at least one axis, got []");
  return input;
}

}  // namespace

Shape ReLU::output_shape(const Shape& input) const { return same_shape(input); }
Shape ReLU6::output_shape(const Shape& input) const { return same_shape(input); }
Shape LeakyReLU::output_shape(const Shape& input) const { return same_shape(input); }
Shape Sigmoid::output_shape(const Shape& input) const { return same_shape(input); }
Shape Tanh::output_shape(const Shape& input) const { return same_shape(input); }
Shape Softmax::output_shape(const Shape& input) const { return same_shape(input); }
Shape LogSoftmax::output_shape(const Shape& input) const { return same_shape(input); }
Shape Dropout::output_shape(const Shape& input) const { return same_shape(input); }

// [C, H, W] -> [C * H * W]
Shape Flatten::output_shape(const Shape& input) const {
  std::size_t n = 1;
  for (std::size_t d : input) n *= d;
  return Shape{n};
}

std::string ReLU::to_line() const { return "relu"; }
std::string ReLU6::to_line() const { return "relu6"; }
std::string LeakyReLU::to_line() const { return "leakyrelu slope=" + format_number(negative_slope); }
std::string Sigmoid::to_line() const { return "sigmoid"; }
std::string Tanh::to_line() const { return "tanh"; }
std::string Softmax::to_line() const { return "softmax"; }
std::string LogSoftmax::to_line() const { return "logsoftmax"; }
std::string Flatten::to_line() const { return "flatten"; }
std::string Dropout::to_line() const { return "dropout p=" + format_number(p); }

void register_activation_layers() {
  register_layer("relu", [](LayerArgs&) { return std::make_unique<ReLU>(); });
  register_layer("relu6", [](LayerArgs&) { return std::make_unique<ReLU6>(); });
  register_layer("sigmoid", [](LayerArgs&) { return std::make_unique<Sigmoid>(); });
  register_layer("tanh", [](LayerArgs&) { return std::make_unique<Tanh>(); });
  register_layer("softmax", [](LayerArgs&) { return std::make_unique<Softmax>(); });
  register_layer("logsoftmax", [](LayerArgs&) { return std::make_unique<LogSoftmax>(); });
  register_layer("flatten", [](LayerArgs&) { return std::make_unique<Flatten>(); });
  register_layer("leakyrelu",
                 [](LayerArgs& args) { return std::make_unique<LeakyReLU>(args.number("slope", 0.01f)); });
  register_layer("dropout", [](LayerArgs& args) {
    const float p = args.number("p", 0.5f);
    if (!(p >= 0.f && p < 1.f)) args.fail("p must be in [0, 1), got ", p);
    return std::make_unique<Dropout>(p);
  });
}

}  // namespace tg
