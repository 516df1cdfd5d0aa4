// max_pool2d, avg_pool2d, global_avg_pool2d: validation, the forwards, their named backwards.
#include "core/ops/pooling.hpp"

#include <memory>

#include "core/base/error.hpp"

namespace tg {

namespace {

// The checks and sizes max_pool2d and avg_pool2d share (PyTorch's: floor sizes, padding at most half the
// kernel); errors name `op`.
Pool2dGeometry pool2d_geometry(const char* op, const Shape& x, const std::array<int, 2>& kernel,
                               const std::array<int, 2>& stride, const std::array<int, 2>& padding) {
  if (x.size() != 4) fail(op, ": expected input [N, C, H, W], got ", shape_str(x));
  if (x[2] == 0 || x[3] == 0) fail(op, ": the input has no pixels: ", shape_str(x));
  if (kernel[0] < 1 || kernel[1] < 1) fail(op, ": kernel must be >= 1, got ", shape_str(kernel));
  if (stride[0] < 0 || stride[1] < 0) fail(op, ": stride must be >= 1, got ", shape_str(stride));
  if (padding[0] < 0 || padding[1] < 0 || 2 * padding[0] > kernel[0] || 2 * padding[1] > kernel[1]) {
    fail(op, ": padding must be between 0 and half the kernel ", shape_str(kernel), ", got ",
         shape_str(padding), " (input ", shape_str(x), ")");
  }
  Pool2dGeometry g{};
  g.planes = x[0] * x[1], g.h = x[2], g.w = x[3];
  g.kh = static_cast<std::size_t>(kernel[0]), g.kw = static_cast<std::size_t>(kernel[1]);
  g.stride_h = static_cast<std::size_t>(stride[0] == 0 ? kernel[0] : stride[0]);
  g.stride_w = static_cast<std::size_t>(stride[1] == 0 ? kernel[1] : stride[1]);
  g.pad_h = static_cast<std::size_t>(padding[0]), g.pad_w = static_cast<std::size_t>(padding[1]);
  const std::size_t padded_h = g.h + 2 * g.pad_h, padded_w = g.w + 2 * g.pad_w;
  if (g.kh > padded_h || g.kw > padded_w) {
    fail(op, ": kernel ", g.kh, "x", g.kw, " is larger than the padded input ", padded_h, "x", padded_w,
         " (input ", shape_str(x), ")");
  }
  g.h_out = (padded_h - g.kh) / g.stride_h + 1;
  g.w_out = (padded_w - g.kw) / g.stride_w + 1;
  return g;
}

}  // namespace

Pool2dGeometry max_pool2d_geometry(const Shape& x, const MaxPool2dOptions& o) {
  return pool2d_geometry("max_pool2d", x, o.kernel, o.stride, o.padding);
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
  return gradients(std::move(dx));
}

Pool2dGeometry avg_pool2d_geometry(const Shape& x, const AvgPool2dOptions& o) {
  return pool2d_geometry("avg_pool2d", x, o.kernel, o.stride, o.padding);
}

Tensor avg_pool2d(const Tensor& x, const AvgPool2dOptions& options) {
  const Pool2dGeometry g = avg_pool2d_geometry(x.shape(), options);
  const Shape& s = x.shape();
  Array out = Array::from_shape({s[0], s[1], g.h_out, g.w_out});
  avg_pool2d_rows_forward(x.value().data(), g, out.data());
  const Shape in_shape = s;
  return make_op("avg_pool2d", std::move(out), {x},
                 [g, in_shape](const Array& dout) { return avg_pool2d_backward(dout, g, in_shape); });
}

// d mean/dx = 1 / (kh * kw) on every cell of the window (padded cells have no gradient to receive)
std::vector<Array> avg_pool2d_backward(const Array& dout, const Pool2dGeometry& g, const Shape& x_shape) {
  Array dx = Array::from_shape(x_shape);
  avg_pool2d_rows_backward(dout.data(), g, dx.data());
  return gradients(std::move(dx));
}

Tensor global_avg_pool2d(const Tensor& x) {
  const Shape& s = x.shape();
  if (s.size() != 4) fail("global_avg_pool2d: expected input [N, C, H, W], got ", shape_str(s));
  if (s[2] == 0 || s[3] == 0) fail("global_avg_pool2d: the input has no pixels: ", shape_str(s));
  Array out = Array::from_shape({s[0], s[1]});
  global_avg_pool2d_simd_forward(x.value().data(), s[0] * s[1], s[2] * s[3], out.data());
  const Shape in_shape = s;
  return make_op("global_avg_pool2d", std::move(out), {x},
                 [in_shape](const Array& dout) { return global_avg_pool2d_backward(dout, in_shape); });
}

// d mean/dx = 1 / (H * W) on every cell of the channel
std::vector<Array> global_avg_pool2d_backward(const Array& dout, const Shape& x_shape) {
  Array dx = Array::from_shape(x_shape);
  global_avg_pool2d_simd_backward(dout.data(), x_shape[0] * x_shape[1], x_shape[2] * x_shape[3], dx.data());
  return gradients(std::move(dx));
}

}  // namespace tg
