#include "layers/pooling.hpp"

#include <algorithm>

#include "core/autograd/error.hpp"
#include "layers/registry.hpp"

namespace tg {

MaxPool2D::MaxPool2D(MaxPool2dOptions opts) : options(opts) {
  if (options.kernel[0] < 1 || options.kernel[1] < 1)
    fail("MaxPool2D: kernel must be >= 1, got ", shape_str(options.kernel));
}

Tensor MaxPool2D::forward(const Tensor& x) { return max_pool2d(x, options); }

std::string MaxPool2D::describe() const {
  auto pair = [](const std::array<int, 2>& v) { return std::to_string(v[0]) + "x" + std::to_string(v[1]); };
  std::string s = "MaxPool2D(kernel " + pair(options.kernel);
  if (options.stride != std::array<int, 2>{0, 0} && options.stride != options.kernel)
    s += ", stride " + pair(options.stride);
  if (options.padding != std::array<int, 2>{0, 0}) s += ", padding " + pair(options.padding);
  return s + ")";
}

Shape MaxPool2D::output_shape(const Shape& input) const {
  if (input.size() != 3) fail("expected input [C, H, W], got ", shape_str(input));
  const std::size_t padded_h = input[1] + 2 * static_cast<std::size_t>(std::max(options.padding[0], 0)),
                    padded_w = input[2] + 2 * static_cast<std::size_t>(std::max(options.padding[1], 0));
  if (static_cast<std::size_t>(options.kernel[0]) > padded_h ||
      static_cast<std::size_t>(options.kernel[1]) > padded_w) {
    fail("kernel ", options.kernel[0], "x", options.kernel[1], " is larger than the padded input ", padded_h,
         "x", padded_w, " (input ", shape_str(input), ")");
  }
  const Pool2dGeometry g = max_pool2d_geometry(Shape{1, input[0], input[1], input[2]}, options);
  return Shape{input[0], g.h_out, g.w_out};
}

std::string MaxPool2D::to_line() const {
  std::string s = "maxpool2d " + format_size2(options.kernel);
  if (options.stride != std::array<int, 2>{0, 0} && options.stride != options.kernel) {
    s += " stride=" + format_size2(options.stride);
  }
  if (options.padding != std::array<int, 2>{0, 0}) s += " padding=" + format_size2(options.padding);
  return s;
}

void register_pooling_layers() {
  register_layer("maxpool2d", [](LayerArgs& args) {
    MaxPool2dOptions options;
    options.kernel = args.positional_size2(0, "KERNEL");
    options.stride = args.size2("stride", options.kernel);
    options.padding = args.size2("padding", {0, 0}, 0);
    if (args.input().size() != 3) {
      args.fail("input is ", shape_str(args.input()), "; maxpool2d needs [C, H, W] images");
    }
    return std::make_unique<MaxPool2D>(options);
  });
}

}  // namespace tg
