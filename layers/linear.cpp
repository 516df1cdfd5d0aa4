#include "layers/linear.hpp"

#include "core/base/error.hpp"
#include "core/ops/ops.hpp"
#include "layers/init.hpp"
#include "layers/int8.hpp"
#include "layers/registry.hpp"

namespace tg {

Linear::Linear(std::size_t in, std::size_t out, bool with_bias) : in_features(in), out_features(out) {
  if (in == 0 || out == 0) fail("Linear: in and out features must be >= 1, got ", in, " -> ", out);
  weight = Tensor(kaiming_uniform_default({out, in}, in));
  register_parameter("weight", weight);
  if (with_bias) {
    bias = Tensor(bias_uniform_default({out}, in));
    register_parameter("bias", bias);
  }
}

Tensor Linear::forward(const Tensor& x) {
  if (x.dim() != 2 || x.shape()[1] != in_features) {
    fail("expected input [N, ", in_features, "], got ", shape_str(x.shape()));
  }
  if (int8::Hook* h = int8::active()) {  // an Int8Model's forward or calibration (layers/int8.hpp)
    if (std::optional<Tensor> y = h->linear(*this, x)) return *y;
  }
  return linear(x, weight, bias);
}

std::string Linear::describe() const {
  return "Linear(" + std::to_string(in_features) + " -> " + std::to_string(out_features) +
         (bias.defined() ? "" : ", no bias") + ")";
}

Shape Linear::output_shape(const Shape& input) const {
  if (input.size() != 1 || input[0] != in_features) {
    fail("expected input [", in_features, "], got ", shape_str(input));
  }
  return Shape{out_features};
}

std::string Linear::to_line() const {
  return "linear " + std::to_string(out_features) + (bias.defined() ? "" : " bias=false");
}

void register_linear_layer() {
  register_layer("linear", [](LayerArgs& args) {
    const int out = args.positional_channels(0, "OUT");
    const bool bias = args.boolean("bias", true);
    const Shape& in = args.input();
    if (in.size() != 1) args.fail("input is ", shape_str(in), "; add 'flatten' before it");
    args.check_parameter_count(double(out) * double(in[0] + 1));
    return std::make_unique<Linear>(in[0], static_cast<std::size_t>(out), bias);
  });
}

}  // namespace tg
