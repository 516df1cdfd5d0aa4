#include "layers/conv2d.hpp"

#include "core/base/error.hpp"
#include "layers/fusion.hpp"
#include "layers/init.hpp"
#include "layers/int8.hpp"
#include "layers/registry.hpp"

namespace tg {

Conv2D::Conv2D(std::size_t in, std::size_t out, KernelSize k, Conv2dOptions opts, bool with_bias)
    : in_channels(in), out_channels(out), kernel(k), options(opts) {
  if (in == 0 || out == 0 || k.h < 1 || k.w < 1) {
    fail("Conv2D: channels and kernel must be >= 1, got ", in, " -> ", out, ", kernel ", k.h, "x", k.w);
  }
  if (opts.groups < 1 || in % static_cast<std::size_t>(opts.groups) != 0 ||
      out % static_cast<std::size_t>(opts.groups) != 0) {
    fail("Conv2D: groups=", opts.groups, " must be >= 1 and divide both the ", in, " input and the ", out,
         " output channels");
  }
  const auto kh = static_cast<std::size_t>(k.h), kw = static_cast<std::size_t>(k.w);
  const std::size_t fan_in = in / static_cast<std::size_t>(opts.groups) * kh * kw;  // one filter's inputs
  weight = Tensor(kaiming_uniform_default({out, in / static_cast<std::size_t>(opts.groups), kh, kw}, fan_in));
  register_parameter("weight", weight);
  if (with_bias) {
    bias = Tensor(bias_uniform_default({out}, fan_in));
    register_parameter("bias", bias);
  }
}

void Conv2D::check_input(const Tensor& x) const {
  if (x.dim() != 4 || x.shape()[1] != in_channels) {
    fail("expected input [N, ", in_channels, ", H, W], got ", shape_str(x.shape()));
  }
}

Tensor Conv2D::forward(const Tensor& x) {
  check_input(x);
  if (int8::Hook* h = int8::active()) {  // an Int8Model's forward or calibration (layers/int8.hpp)
    if (std::optional<Tensor> y = h->conv(*this, x, {})) return *y;
  }
  // training fusion: Sequential offers the ReLU after this layer (layers/fusion.hpp)
  if (ActivationAhead* ahead = fusion::take_ahead()) return conv2d(x, weight, bias, options, *ahead);
  return conv2d(x, weight, bias, options);
}

Tensor Conv2D::forward_fused(const Tensor& x, const ConvFollowers& followers) const {
  check_input(x);
  if (int8::Hook* h = int8::active()) {
    if (std::optional<Tensor> y = h->conv(*this, x, followers)) return *y;
  }
  return conv2d_fused(x, weight, bias, options, followers);
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
  if (options.groups != 1) s += ", groups " + std::to_string(options.groups);
  return s + (bias.defined() ? ")" : ", no bias)");
}

Shape Conv2D::output_shape(const Shape& input) const {
  if (input.size() != 3 || input[0] != in_channels) {
    fail("expected input [", in_channels, ", H, W], got ", shape_str(input));
  }
  const Shape weight_shape{out_channels, in_channels / static_cast<std::size_t>(options.groups),
                           static_cast<std::size_t>(kernel.h), static_cast<std::size_t>(kernel.w)};
  const Conv2dGeometry g = conv2d_geometry(Shape{1, input[0], input[1], input[2]}, weight_shape, options);
  return Shape{out_channels, g.h_out, g.w_out};
}

std::string Conv2D::to_line() const {
  std::string s = "conv2d " + std::to_string(out_channels) + " " + format_size2({kernel.h, kernel.w});
  if (options.stride != std::array<int, 2>{1, 1}) s += " stride=" + format_size2(options.stride);
  if (options.padding.same) {
    s += " padding=same";
  } else if (options.padding.h != 0 || options.padding.w != 0) {
    s += " padding=" + format_size2({options.padding.h, options.padding.w});
  }
  if (options.dilation != std::array<int, 2>{1, 1}) s += " dilation=" + format_size2(options.dilation);
  if (options.groups != 1) s += " groups=" + std::to_string(options.groups);
  return bias.defined() ? s : s + " bias=false";
}

void register_conv2d_layer() {
  register_layer("conv2d", [](LayerArgs& args) {
    const int out = args.positional_channels(0, "OUT");
    const std::array<int, 2> k = args.positional_size2(1, "KERNEL");
    Conv2dOptions options;
    options.stride = args.size2("stride", {1, 1});
    const std::string padding = args.text("padding", "0");
    if (padding == "same") {
      options.padding = kSame;
    } else if (padding != "valid") {
      const std::array<int, 2> p = args.size2("padding", {0, 0}, 0);
      options.padding = Padding2d{p[0], p[1], false};
    }
    options.dilation = args.size2("dilation", {1, 1});
    options.groups = args.channels("groups", 1);
    const bool bias = args.boolean("bias", true);
    const Shape& in = args.input();
    if (in.size() != 3) args.fail("input is ", shape_str(in), "; conv2d needs [C, H, W] images");
    const auto groups = static_cast<std::size_t>(options.groups);
    if (in[0] % groups != 0) {
      args.fail("groups=", groups, " does not divide the ", in[0], " input channels (input ", shape_str(in),
                ")");
    }
    if (static_cast<std::size_t>(out) % groups != 0) {
      args.fail("groups=", groups, " does not divide the ", out, " output channels");
    }
    args.check_parameter_count(double(out) * double(in[0] / groups) * k[0] * k[1]);
    return std::make_unique<Conv2D>(in[0], static_cast<std::size_t>(out), KernelSize(k[0], k[1]), options,
                                    bias);
  });
}

}  // namespace tg
