#include "layers/linear.hpp"

#include "core/autograd/error.hpp"
#include "core/ops/ops.hpp"
#include "layers/init.hpp"

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
  return linear(x, weight, bias);
}

std::string Linear::describe() const {
  return "Linear(" + std::to_string(in_features) + " -> " + std::to_string(out_features) +
         (bias.defined() ? "" : ", no bias") + ")";
}

}  // namespace tg
