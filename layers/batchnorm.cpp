#include "layers/batchnorm.hpp"

#include <cmath>

#include "core/base/error.hpp"
#include "layers/fusion.hpp"
#include "layers/registry.hpp"

namespace tg {
namespace {

// The options' rules, for the constructor (tg::Error) and the model file (its own error).
std::string options_problem(const BatchNormOptions& o) {
  if (!(o.eps > 0.f) || !std::isfinite(o.eps)) return "eps must be a number > 0, got " + format_number(o.eps);
  if (!(o.momentum >= 0.f && o.momentum <= 1.f)) {
    return "momentum must be in [0, 1], got " + format_number(o.momentum);
  }
  return "";
}

}  // namespace

BatchNorm2d::BatchNorm2d(std::size_t c, BatchNormOptions opts)
    : weight(xt::ones<float>({c})),
      bias(xt::zeros<float>({c})),
      running_mean(xt::zeros<float>({c})),
      running_var(xt::ones<float>({c})),
      num_batches_tracked(Array(0.f)),
      channels(c),
      options(opts) {
  if (c == 0) fail("BatchNorm2d: channels must be >= 1, got 0");
  if (const std::string problem = options_problem(options); !problem.empty()) fail("BatchNorm2d: ", problem);
  register_parameter("weight", weight);
  register_parameter("bias", bias);
  register_buffer("running_mean", running_mean);
  register_buffer("running_var", running_var);
  register_buffer("num_batches_tracked", num_batches_tracked);
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  if (x.dim() != 4 || x.shape()[1] != channels) {
    fail("expected input [N, ", channels, ", H, W], got ", shape_str(x.shape()));
  }
  const BatchNorm2dOptions o{.eps = options.eps,
                             .momentum = options.momentum,
                             .training = is_training(),
                             .running_mean = running_mean,
                             .running_var = running_var};
  // training fusion: Sequential offers the ReLU after this layer (layers/fusion.hpp)
  ActivationAhead* ahead = fusion::take_ahead();
  Tensor out = ahead ? batch_norm2d(x, weight, bias, o, *ahead) : batch_norm2d(x, weight, bias, o);
  if (is_training()) num_batches_tracked.value().data()[0] += 1.f;  // after the op: not when it throws
  return out;
}

std::string BatchNorm2d::describe() const {
  std::string s = "BatchNorm2d(" + std::to_string(channels);
  if (options.eps != BatchNormOptions{}.eps) s += ", eps " + format_number(options.eps);
  if (options.momentum != BatchNormOptions{}.momentum) s += ", momentum " + format_number(options.momentum);
  return s + ")";
}

Shape BatchNorm2d::output_shape(const Shape& input) const {
  if (input.size() != 3 || input[0] != channels) {
    fail("expected input [", channels, ", H, W], got ", shape_str(input));
  }
  return input;
}

std::string BatchNorm2d::to_line() const {
  std::string s = "batchnorm2d";
  if (options.eps != BatchNormOptions{}.eps) s += " eps=" + format_number(options.eps);
  if (options.momentum != BatchNormOptions{}.momentum) s += " momentum=" + format_number(options.momentum);
  return s;
}

void register_batchnorm_layer() {
  register_layer("batchnorm2d", [](LayerArgs& args) {
    BatchNormOptions options;
    options.eps = args.number("eps", options.eps);
    options.momentum = args.number("momentum", options.momentum);
    if (const std::string problem = options_problem(options); !problem.empty()) args.fail(problem);
    const Shape& in = args.input();
    if (in.size() != 3) args.fail("input is ", shape_str(in), "; batchnorm2d needs [C, H, W] images");
    return std::make_unique<BatchNorm2d>(in[0], options);
  });
}

}  // namespace tg
