// Elementwise ops: + - * / with numpy broadcasting, scalar variants, and the pointwise nonlinearities.
// Forward and backward of each op sit side by side; kernels are plain loops over contiguous buffers.
#include "core/ops/elementwise.hpp"
#include "core/ops/fused.hpp"

#include <cmath>

#include "core/base/error.hpp"
#include "core/runtime/random.hpp"
#include "core/runtime/threads.hpp"

namespace tg {
namespace {

// out[i] = f(x[i]), in parallel for large arrays (f must be pure)
template <class F>
Array map(const Array& x, F f) {
  Array out = Array::from_shape(x.shape());
  const float* px = x.data();
  float* po = out.data();
  parallel_for(
      x.size(),
      [&](std::size_t i0, std::size_t i1) {
        for (std::size_t i = i0; i < i1; ++i) po[i] = f(px[i]);
      },
      kElementGrain);
  return out;
}

// out[i] = f(x[i], y[i]); x and y have the same shape
template <class F>
Array zip(const Array& x, const Array& y, F f) {
  Array out = Array::from_shape(x.shape());
  const float* px = x.data();
  const float* py = y.data();
  float* po = out.data();
  parallel_for(
      x.size(),
      [&](std::size_t i0, std::size_t i1) {
        for (std::size_t i = i0; i < i1; ++i) po[i] = f(px[i], py[i]);
      },
      kElementGrain);
  return out;
}

// The result of a broadcasting binary op: a plain loop when shapes agree, xtensor broadcasting otherwise.
template <class F, class XF>
Array broadcast_zip(const Array& a, const Array& b, const char* op, F f, XF xf) {
  if (a.shape() == b.shape()) return zip(a, b, f);
  broadcast_shapes(a.shape(), b.shape(), op);  // throws with both shapes
  return xf(a, b);
}

}  // namespace

// ---- tensor (op) tensor, numpy broadcasting: the backward sums each gradient back to its input's shape ----
Tensor operator+(const Tensor& a, const Tensor& b) {
  Array out = broadcast_zip(a.value(), b.value(), "add", std::plus<>(),
                            [](const Array& x, const Array& y) { return Array(x + y); });
  return make_op("add", std::move(out), {a, b},
                 [a, b](const Array& dout) { return add_backward(dout, a, b); });
}

// d(a+b)/da = d(a+b)/db = 1
std::vector<Array> add_backward(const Array& dout, const Tensor& a, const Tensor& b) {
  Array da = no_gradient(), db = no_gradient();
  if (a.requires_grad()) da = sum_to_shape(dout, a.shape());
  if (b.requires_grad()) db = sum_to_shape(dout, b.shape());
  return gradients(std::move(da), std::move(db));
}

Tensor operator-(const Tensor& a, const Tensor& b) {
  Array out = broadcast_zip(a.value(), b.value(), "sub", std::minus<>(),
                            [](const Array& x, const Array& y) { return Array(x - y); });
  return make_op("sub", std::move(out), {a, b},
                 [a, b](const Array& dout) { return sub_backward(dout, a, b); });
}

// d(a-b)/da = 1, d(a-b)/db = -1
std::vector<Array> sub_backward(const Array& dout, const Tensor& a, const Tensor& b) {
  Array da = no_gradient(), db = no_gradient();
  if (a.requires_grad()) da = sum_to_shape(dout, a.shape());
  if (b.requires_grad()) db = sum_to_shape(map(dout, [](float g) { return -g; }), b.shape());
  return gradients(std::move(da), std::move(db));
}

Tensor operator*(const Tensor& a, const Tensor& b) {
  Array out = broadcast_zip(a.value(), b.value(), "mul", std::multiplies<>(),
                            [](const Array& x, const Array& y) { return Array(x * y); });
  return make_op("mul", std::move(out), {a, b},
                 [a, b](const Array& dout) { return mul_backward(dout, a, b); });
}

// d(ab)/da = b, d(ab)/db = a
std::vector<Array> mul_backward(const Array& dout, const Tensor& a, const Tensor& b) {
  Array da = no_gradient(), db = no_gradient();
  if (a.requires_grad()) {
    Array dfull =
        dout.shape() == b.shape() ? zip(dout, b.value(), std::multiplies<>()) : Array(dout * b.value());
    da = sum_to_shape(dfull, a.shape());
  }
  if (b.requires_grad()) {
    Array dfull =
        dout.shape() == a.shape() ? zip(dout, a.value(), std::multiplies<>()) : Array(dout * a.value());
    db = sum_to_shape(dfull, b.shape());
  }
  return gradients(std::move(da), std::move(db));
}

Tensor operator/(const Tensor& a, const Tensor& b) {
  Array out = broadcast_zip(a.value(), b.value(), "div", std::divides<>(),
                            [](const Array& x, const Array& y) { return Array(x / y); });
  return make_op("div", std::move(out), {a, b},
                 [a, b](const Array& dout) { return div_backward(dout, a, b); });
}

// d(a/b)/da = 1/b, d(a/b)/db = -a/b^2
std::vector<Array> div_backward(const Array& dout, const Tensor& a, const Tensor& b) {
  Array da = no_gradient(), db = no_gradient();
  if (a.requires_grad()) da = sum_to_shape(Array(dout / b.value()), a.shape());
  if (b.requires_grad()) {
    db = sum_to_shape(Array(-dout * a.value() / (b.value() * b.value())), b.shape());
  }
  return gradients(std::move(da), std::move(db));
}

// ---- with a float on either side: no broadcasting, no extra tensor ----
Tensor operator+(const Tensor& a, float s) {
  return make_op("add_scalar", map(a.value(), [s](float x) { return x + s; }), {a},
                 [](const Array& dout) { return add_scalar_backward(dout); });
}
Tensor operator+(float s, const Tensor& a) { return a + s; }

// d(x+s)/dx = 1
std::vector<Array> add_scalar_backward(const Array& dout) { return {dout}; }

Tensor operator-(const Tensor& a, float s) {
  return make_op("sub_scalar", map(a.value(), [s](float x) { return x - s; }), {a},
                 [](const Array& dout) { return sub_scalar_backward(dout); });
}

// d(x-s)/dx = 1
std::vector<Array> sub_scalar_backward(const Array& dout) { return {dout}; }

Tensor operator-(float s, const Tensor& a) {
  return make_op("rsub_scalar", map(a.value(), [s](float x) { return s - x; }), {a},
                 [](const Array& dout) { return rsub_scalar_backward(dout); });
}

// d(s-x)/dx = -1
std::vector<Array> rsub_scalar_backward(const Array& dout) {
  return gradients(map(dout, [](float g) { return -g; }));
}

Tensor operator*(const Tensor& a, float s) {
  return make_op("mul_scalar", map(a.value(), [s](float x) { return x * s; }), {a},
                 [s](const Array& dout) { return mul_scalar_backward(dout, s); });
}
Tensor operator*(float s, const Tensor& a) { return a * s; }

// d(xs)/dx = s
std::vector<Array> mul_scalar_backward(const Array& dout, float s) {
  return gradients(map(dout, [s](float g) { return g * s; }));
}

Tensor operator/(const Tensor& a, float s) {
  return make_op("div_scalar", map(a.value(), [s](float x) { return x / s; }), {a},
                 [s](const Array& dout) { return div_scalar_backward(dout, s); });
}

// d(x/s)/dx = 1/s
std::vector<Array> div_scalar_backward(const Array& dout, float s) {
  return gradients(map(dout, [s](float g) { return g / s; }));
}

Tensor operator/(float s, const Tensor& a) {
  return make_op("rdiv_scalar", map(a.value(), [s](float x) { return s / x; }), {a},
                 [a, s](const Array& dout) { return rdiv_scalar_backward(dout, a.value(), s); });
}

// d(s/x)/dx = -s/x^2
std::vector<Array> rdiv_scalar_backward(const Array& dout, const Array& a, float s) {
  return gradients(zip(dout, a, [s](float g, float x) { return -g * s / (x * x); }));
}

Tensor operator-(const Tensor& a) {
  return make_op("neg", map(a.value(), [](float x) { return -x; }), {a},
                 [](const Array& dout) { return neg_backward(dout); });
}

// d(-x)/dx = -1
std::vector<Array> neg_backward(const Array& dout) {
  return gradients(map(dout, [](float g) { return -g; }));
}

// ---- pointwise nonlinearities ----
Tensor relu(const Tensor& x) {
  return make_op("relu", map(x.value(), [](float v) { return v > 0.f ? v : 0.f; }), {x},
                 [](const Array& dout, const Array& y) { return relu_backward(dout, y); });
}

Tensor fused_activation(const Tensor& x, ActivationAhead& ahead) {
  const bool relu6_wanted = ahead.act == ConvActivation::ReLU6;
  if (!ahead.fused || x.node() != ahead.output) return relu6_wanted ? relu6(x) : relu(x);
  if (ahead.activated.shape() != x.shape()) {
    fail(relu6_wanted ? "relu6" : "relu", ": the fused pass computed ", shape_str(ahead.activated.shape()),
         " for an input of ", shape_str(x.shape()));
  }
  ahead.fused = false;
  if (relu6_wanted) {
    return make_op("relu6", std::move(ahead.activated), {x},
                   [](const Array& dout, const Array& y) { return relu6_backward(dout, y); });
  }
  return make_op("relu", std::move(ahead.activated), {x},
                 [](const Array& dout, const Array& y) { return relu_backward(dout, y); });
}

// d relu/dx = 1 where y > 0, else 0
std::vector<Array> relu_backward(const Array& dout, const Array& y) {
  return gradients(zip(dout, y, [](float g, float v) { return v > 0.f ? g : 0.f; }));
}

// sigmoid(x) = 1 / (1 + e^-x), written to stay finite for large |x|
Tensor sigmoid(const Tensor& x) {
  auto f = [](float v) {
    if (v >= 0.f) return 1.f / (1.f + std::exp(-v));
    const float e = std::exp(v);
    return e / (1.f + e);
  };
  return make_op("sigmoid", map(x.value(), f), {x},
                 [](const Array& dout, const Array& y) { return sigmoid_backward(dout, y); });
}

// d sigmoid/dx = y (1 - y)
std::vector<Array> sigmoid_backward(const Array& dout, const Array& y) {
  return gradients(zip(dout, y, [](float g, float v) { return g * v * (1.f - v); }));
}

Tensor tanh(const Tensor& x) {
  return make_op("tanh", map(x.value(), [](float v) { return std::tanh(v); }), {x},
                 [](const Array& dout, const Array& y) { return tanh_backward(dout, y); });
}

// d tanh/dx = 1 - y^2
std::vector<Array> tanh_backward(const Array& dout, const Array& y) {
  return gradients(zip(dout, y, [](float g, float v) { return g * (1.f - v * v); }));
}

Tensor exp(const Tensor& x) {
  return make_op("exp", map(x.value(), [](float v) { return std::exp(v); }), {x},
                 [](const Array& dout, const Array& y) { return exp_backward(dout, y); });
}

// d exp/dx = y
std::vector<Array> exp_backward(const Array& dout, const Array& y) {
  return gradients(zip(dout, y, std::multiplies<>()));
}

// Natural log; like PyTorch, log(0) = -inf and log(<0) = nan (no throw: values are not shapes).
Tensor log(const Tensor& x) {
  return make_op("log", map(x.value(), [](float v) { return std::log(v); }), {x},
                 [x](const Array& dout) { return log_backward(dout, x.value()); });
}

// d log/dx = 1/x
std::vector<Array> log_backward(const Array& dout, const Array& x) {
  return gradients(zip(dout, x, std::divides<>()));
}

Tensor leaky_relu(const Tensor& x, float slope) {
  return make_op("leaky_relu", map(x.value(), [slope](float v) { return v > 0.f ? v : slope * v; }), {x},
                 [x, slope](const Array& dout) { return leaky_relu_backward(dout, x.value(), slope); });
}

// d leaky_relu/dx = 1 where x > 0, else slope
std::vector<Array> leaky_relu_backward(const Array& dout, const Array& x, float slope) {
  return gradients(zip(dout, x, [slope](float g, float v) { return v > 0.f ? g : slope * g; }));
}

Tensor relu6(const Tensor& x) {
  return make_op("relu6", map(x.value(), [](float v) { return v < 0.f ? 0.f : (v > 6.f ? 6.f : v); }), {x},
                 [](const Array& dout, const Array& y) { return relu6_backward(dout, y); });
}

// d relu6/dx = 1 where 0 < x < 6, else 0: PyTorch's hardtanh backward, which passes no gradient at the
// kinks (x == 0 and x == 6 give 0). 0 < y < 6 exactly when 0 < x < 6, so the output is enough.
std::vector<Array> relu6_backward(const Array& dout, const Array& y) {
  return gradients(zip(dout, y, [](float g, float v) { return v > 0.f && v < 6.f ? g : 0.f; }));
}

Tensor dropout(const Tensor& x, float p, Generator& gen) {
  if (!(p >= 0.f && p < 1.f)) fail("dropout: p must be in [0, 1), got ", p);
  // mask holds 0 or 1/(1-p); the same mask scales the gradient
  const float keep_scale = 1.f / (1.f - p);
  Array mask = Array::from_shape(x.shape());  // in order, one draw per element (not map: it runs in parallel)
  for (float& m : mask) m = gen.uniform() < p ? 0.f : keep_scale;
  Array out = zip(x.value(), mask, std::multiplies<>());
  return make_op("dropout", std::move(out), {x},
                 [mask = std::move(mask)](const Array& dout) { return dropout_backward(dout, mask); });
}

// d dropout/dx = mask (0 or 1/(1-p))
std::vector<Array> dropout_backward(const Array& dout, const Array& mask) {
  return gradients(zip(dout, mask, std::multiplies<>()));
}

// ---- broadcasting helpers ----
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const std::size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (std::size_t i = 0; i < n; ++i) {
    // align from the right
    const std::size_t da = i + a.size() >= n ? a[i + a.size() - n] : 1;
    const std::size_t db = i + b.size() >= n ? b[i + b.size() - n] : 1;
    if (da != db && da != 1 && db != 1) {
      fail(op, ": shapes cannot be broadcast together: ", shape_str(a), " and ", shape_str(b));
    }
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Array sum_to_shape(const Array& grad, const Shape& shape) {
  if (grad.shape() == shape) return grad;
  // Walk grad in row-major order with a multi-index; each element adds into the output element whose
  // index is the same, except 0 on broadcast axes (output stride 0 there) and dropped leading axes.
  const std::size_t dims = grad.dimension();
  const std::size_t lead = dims - shape.size();
  std::vector<std::size_t> out_stride(dims, 0);
  std::size_t stride = 1;
  for (std::size_t i = dims; i-- > lead;) {
    const std::size_t extent = shape[i - lead];
    out_stride[i] = extent == 1 ? 0 : stride;
    stride *= extent;
  }
  Array out = xt::zeros<float>(shape);
  std::vector<std::size_t> index(dims, 0);
  const float* g = grad.data();
  float* o = out.data();
  std::size_t offset = 0;  // flat output offset of `index`
  for (std::size_t flat = 0; flat < grad.size(); ++flat) {
    o[offset] += g[flat];
    for (std::size_t d = dims; d-- > 0;) {  // increment the multi-index, odometer style
      offset += out_stride[d];
      if (++index[d] < grad.shape()[d]) break;
      offset -= out_stride[d] * index[d];
      index[d] = 0;
    }
  }
  return out;
}

}  // namespace tg
