#include "layers/conv2d.hpp"

#include "core/autograd/error.hpp"
#include "layers/init.hpp"

namespace tg {

Conv2D::Conv2D(std::size_t in, std::size_t out, KernelSize k, Conv2dOptions opts, bool with_bias)
    : in_channels(in), out_channels(out), kernel(k), options(opts) {
  if (in == 0 || out == 0 || k.h < 1 || k.w < 1) {
    fail("Conv2D: channels and kernel must be >= 1, got ", in, " -> ", out, ", kernel ", k.h, "x", k.w);
  }
  const auto kh = static_cast<std::size_t>(k.h), kw = static_cast<std::size_t>(k.w);
  const std::size_t fan_in = in * kh * kw;
  weight = Tensor(kaiming_uniform_default({out, in, kh, kw}, fan_in));
  register_parameter("weight", weight);
  if (with_bias) {
    bias = Tensor(bias_uniform_default({out}, fan_in));
    register_parameter("bias", bias);
  }
}

Tensor Conv2D::forward(const Tensor& x) {
  if (x.dim() != 4 || x.shape()[1] != in_channels) {
    fail("expected input [N, ", in_channels, ", H, W], got ", shape_str(x.shape()));
  }
  return conv2d(x, weight, bias, options);
}

std::string Conv2D::describe() const {
  std::string s = "Conv2D(" + std::to_string(in_channels) + " -> " + std::to_string(out_channels) +
                  ", kernel " + std::to_string(kernel.h) + "x" + std::to_string(kernel.w);
  auto pair = [](int a, int b) { return std::to_string(a) + "x" + std::to_string(b); };
  if (options.stride != std::array<int, 2>{1, 1})
    s += ", stride " + pair(options.stride[0], options.stride[1]);
  if (options.padding.same) {
    s += ", padding same";
  } else if (options.padding.h != 0 || options.padding.w != 0) {
    s += ", padding " + pair(options.padding.h, options.padding.w);
  }
  if (options.dilation != std::array<int, 2>{1, 1}) {
    s += ", dilation " + pair(options.dilation[0], options.dilation[1]);
  }
  return s + (bias.defined() ? ")" : ", no bias)");
}

}  // namespace tg
