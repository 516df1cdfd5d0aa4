#include "layers/pooling.hpp"

#include "core/autograd/error.hpp"

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

}  // namespace tg
