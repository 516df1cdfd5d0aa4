// max_pool2d: validation, the forward, its named backward.
#include "core/ops/pooling.hpp"

#include <memory>

#include "core/autograd/error.hpp"

namespace tg {

Pool2dGeometry max_pool2d_geometry(const Shape& x, const MaxPool2dOptions& o) {
  if (x.size() != 4) fail("max_pool2d: expected input [N, C, H, W], got ", shape_str(x));
  if (x[2] == 0 || x[3] == 0) fail("max_pool2d: the input has no pixels: ", shape_str(x));
  if (o.kernel[0] < 1 || o.kernel[1] < 1) fail("max_pool2d: kernel must be >= 1, got ", shape_str(o.kernel));
  if (o.stride[0] < 0 || o.stride[1] < 0) fail("max_pool2d: stride must be >= 1, got ", shape_str(o.stride));
  if (o.padding[0] < 0 || o.padding[1] < 0 || 2 * o.padding[0] > o.kernel[0] ||
      2 * o.padding[1] > o.kernel[1]) {
    fail("max_pool2d: padding must be between 0 and half the kernel ", shape_str(o.kernel), ", got ",
         shape_str(o.padding));
  }
  Pool2dGeometry g{};
  g.planes = x[0] * x[1], g.h = x[2], g.w = x[3];
  g.kh = static_cast<std::size_t>(o.kernel[0]), g.kw = static_cast<std::size_t>(o.kernel[1]);
  g.stride_h = static_cast<std::size_t>(o.stride[0] == 0 ? o.kernel[0] : o.stride[0]);
  g.stride_w = static_cast<std::size_t>(o.stride[1] == 0 ? o.kernel[1] : o.stride[1]);
  g.pad_h = static_cast<std::size_t>(o.padding[0]), g.pad_w = static_cast<std::size_t>(o.padding[1]);
  const std::size_t padded_h = g.h + 2 * g.pad_h, padded_w = g.w + 2 * g.pad_w;
  if (g.kh > padded_h || g.kw > padded_w) {
    fail("max_pool2d: kernel ", g.kh, "x", g.kw, " is larger than the padded input ", padded_h, "x", padded_w,
         " (input ", shape_str(x), ")");
  }
  g.h_out = (padded_h - g.kh) / g.stride_h + 1;
  g.w_out = (padded_w - g.kw) / g.stride_w + 1;
  return g;
}

Tensor max_pool2d(const Tensor& x, const MaxPool2dOptions& options) {
  const Pool2dGeometry g = max_pool2d_geometry(x.shape(), options);
  const Shape& s = x.shape();
  Array out = Array::from_shape({s[0], s[1], g.h_out, g.w_out});
  // argmax lives as long as the tape entry (shared by the backward lambda), freed with it
  auto argmax = std::make_shared<std::vector<std::int32_t>>(out.size());
  max_pool2d_argmax_forward(x.value().data(), g, out.data(), argmax->data());
  const Shape in_shape = s;
  return make_op("max_pool2d", std::move(out), {x}, [argmax, g, in_shape](const Array& dout) {
    return max_pool2d_backward(dout, *argmax, g, in_shape);
  });
}

// d max/dx = 1 at the window's argmax, 0 elsewhere (windows that overlap add up)
std::vector<Array> max_pool2d_backward(const Array& dout, const std::vector<std::int32_t>& argmax,
                                       const Pool2dGeometry& g, const Shape& x_shape) {
  Array dx = Array::from_shape(x_shape);
  max_pool2d_argmax_backward(dout.data(), argmax.data(), g, dx.data());
  return {std::move(dx)};
}

}  // namespace tg
