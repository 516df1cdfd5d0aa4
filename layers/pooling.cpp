#include "layers/pooling.hpp"

#include <algorithm>

#include "core/base/error.hpp"
#include "layers/registry.hpp"

namespace tg {
namespace {

// MaxPool2D and AvgPool2D print, size and parse the same options.
std::string describe_pool(const std::string& type, const std::array<int, 2>& kernel,
                          const std::array<int, 2>& stride, const std::array<int, 2>& padding) {
  auto pair = [](const std::array<int, 2>& v) { return std::to_string(v[0]) + "x" + std::to_string(v[1]); };
  std::string s = type + "(kernel " + pair(kernel);
  if (stride != std::array<int, 2>{0, 0} && stride != kernel) s += ", stride " + pair(stride);
  if (padding != std::array<int, 2>{0, 0}) s += ", padding " + pair(padding);
  return s + ")";
}

std::string pool_line(const std::string& name, const std::array<int, 2>& kernel,
                      const std::array<int, 2>& stride, const std::array<int, 2>& padding) {
  std::string s = name + " " + format_size2(kernel);
  if (stride != std::array<int, 2>{0, 0} && stride != kernel) s += " stride=" + format_size2(stride);
  if (padding != std::array<int, 2>{0, 0}) s += " padding=" + format_size2(padding);
  return s;
}

// The per-example check of output_shape (no op name: the model-file error names the line), then the op's
// own validation on a batch of one.
void check_pool_input(const Shape& input, const std::array<int, 2>& kernel,
                      const std::array<int, 2>& padding) {
  if (input.size() != 3) fail("expected input [C, H, W], got ", shape_str(input));
  const std::size_t padded_h = input[1] + 2 * static_cast<std::size_t>(std::max(padding[0], 0)),
                    padded_w = input[2] + 2 * static_cast<std::size_t>(std::max(padding[1], 0));
  if (static_cast<std::size_t>(kernel[0]) > padded_h || static_cast<std::size_t>(kernel[1]) > padded_w) {
    fail("kernel ", kernel[0], "x", kernel[1], " is larger than the padded input ", padded_h, "x", padded_w,
         " (input ", shape_str(input), ")");
  }
}

// "NAME KERNEL [stride=S] [padding=P]" into kernel, stride and padding.
template <typename Options>
Options pool_options(LayerArgs& args, const char* name) {
  Options options;
  options.kernel = args.positional_size2(0, "KERNEL");
  options.stride = args.size2("stride", options.kernel);
  options.padding = args.size2("padding", {0, 0}, 0);
  if (args.input().size() != 3)
    args.fail("input is ", shape_str(args.input()), "; ", name, " needs [C, H, W] images");
  return options;
}

}  // namespace

MaxPool2D::MaxPool2D(MaxPool2dOptions opts) : options(opts) {
  if (options.kernel[0] < 1 || options.kernel[1] < 1)
    fail("MaxPool2D: kernel must be >= 1, got ", shape_str(options.kernel));
}

Tensor MaxPool2D::forward(const Tensor& x) { return max_pool2d(x, options); }

std::string MaxPool2D::describe() const {
  return describe_pool("MaxPool2D", options.kernel, options.stride, options.padding);
}

Shape MaxPool2D::output_shape(const Shape& input) const {
  check_pool_input(input, options.kernel, options.padding);
  const Pool2dGeometry g = max_pool2d_geometry(Shape{1, input[0], input[1], input[2]}, options);
  return Shape{input[0], g.h_out, g.w_out};
}

std::string MaxPool2D::to_line() const {
  return pool_line("maxpool2d", options.kernel, options.stride, options.padding);
}

AvgPool2D::AvgPool2D(AvgPool2dOptions opts) : options(opts) {
  if (options.kernel[0] < 1 || options.kernel[1] < 1)
    fail("AvgPool2D: kernel must be >= 1, got ", shape_str(options.kernel));
}

Tensor AvgPool2D::forward(const Tensor& x) { return avg_pool2d(x, options); }

std::string AvgPool2D::describe() const {
  return describe_pool("AvgPool2D", options.kernel, options.stride, options.padding);
}

Shape AvgPool2D::output_shape(const Shape& input) const {
  check_pool_input(input, options.kernel, options.padding);
  const Pool2dGeometry g = avg_pool2d_geometry(Shape{1, input[0], input[1], input[2]}, options);
  return Shape{input[0], g.h_out, g.w_out};
}

std::string AvgPool2D::to_line() const {
  return pool_line("avgpool2d", options.kernel, options.stride, options.padding);
}

Tensor GlobalAvgPool2D::forward(const Tensor& x) { return global_avg_pool2d(x); }

Shape GlobalAvgPool2D::output_shape(const Shape& input) const {
  if (input.size() != 3) fail("expected input [C, H, W], got ", shape_str(input));
  if (input[1] == 0 || input[2] == 0) fail("the input has no pixels: ", shape_str(input));
  return Shape{input[0]};
}

std::string GlobalAvgPool2D::to_line() const { return "globalavgpool2d"; }

void register_pooling_layers() {
  register_layer("maxpool2d", [](LayerArgs& args) {
    return std::make_unique<MaxPool2D>(pool_options<MaxPool2dOptions>(args, "maxpool2d"));
  });
  register_layer("avgpool2d", [](LayerArgs& args) {
    return std::make_unique<AvgPool2D>(pool_options<AvgPool2dOptions>(args, "avgpool2d"));
  });
  register_layer("globalavgpool2d", [](LayerArgs& args) -> std::unique_ptr<Module> {
    if (args.input().size() != 3) {
      args.fail("input is ", shape_str(args.input()), "; globalavgpool2d needs [C, H, W] images");
    }
    return std::make_unique<GlobalAvgPool2D>();
  });
}

}  // namespace tg
