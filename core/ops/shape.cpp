// Reductions to a scalar, and ops that only change the shape.
#include "core/ops/shape.hpp"

#include <numeric>

#include "core/autograd/error.hpp"

namespace tg {
namespace {

float sum_of(const Array& x) {
  // double accumulator: a float sum over 10^6 elements would lose digits
  double s = 0.0;
  const float* p = x.data();
  for (std::size_t i = 0; i < x.size(); ++i) s += p[i];
  return static_cast<float>(s);
}

Array scalar_array(float v) {
  Array out = Array::from_shape({});
  out() = v;
  return out;
}

// d(sum x)/dx = 1 everywhere, scaled by the incoming scalar gradient
std::vector<Array> sum_backward(const Array& dout, const Shape& x_shape, float scale) {
  return {Array(xt::full_like(xt::xarray<float>::from_shape(x_shape), dout.data()[0] * scale))};
}

}  // namespace

Tensor sum(const Tensor& x) {
  const Shape shape = x.shape();
  return make_op("sum", scalar_array(sum_of(x.value())), {x},
                 [shape](const Array& dout) { return sum_backward(dout, shape, 1.f); });
}

Tensor mean(const Tensor& x) {
  const std::size_t n = x.numel();
  if (n == 0) fail("mean: the input is empty (shape ", shape_str(x.shape()), ")");
  const Shape shape = x.shape();
  const float scale = 1.f / static_cast<float>(n);
  return make_op("mean", scalar_array(sum_of(x.value()) * scale), {x},
                 [shape, scale](const Array& dout) { return sum_backward(dout, shape, scale); });
}

Tensor reshape(const Tensor& x, const std::vector<std::int64_t>& shape) {
  const std::size_t n = x.numel();
  Shape target(shape.size());
  std::size_t known = 1;
  int inferred = -1;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (inferred >= 0) fail("reshape: only one -1 is allowed, got ", shape_str(shape));
      inferred = static_cast<int>(i);
    } else if (shape[i] < 0) {
      fail("reshape: dimensions must be >= 0 or -1, got ", shape_str(shape));
    } else {
      target[i] = static_cast<std::size_t>(shape[i]);
      known *= target[i];
    }
  }
  if (inferred >= 0) {
    if (known == 0 || n % known != 0) {
      fail("reshape: cannot reshape ", shape_str(x.shape()), " (", n, " elements) into ", shape_str(shape));
    }
    target[static_cast<std::size_t>(inferred)] = n / known;
  } else if (known != n) {
    fail("reshape: cannot reshape ", shape_str(x.shape()), " (", n, " elements) into ", shape_str(shape));
  }
  Array out = x.value();
  out.reshape(target);
  const Shape in_shape = x.shape();
  return make_op("reshape", std::move(out), {x}, [in_shape](const Array& dout) {
    Array g = dout;
    g.reshape(in_shape);
    return std::vector<Array>{std::move(g)};
  });
}

Tensor flatten(const Tensor& x) {
  if (x.dim() < 1) fail("flatten: expected [N, ...], got a 0-d tensor");
  const auto n = static_cast<std::int64_t>(x.shape()[0]);
  if (n == 0) return reshape(x, {0, static_cast<std::int64_t>(x.numel())});
  return reshape(x, {n, -1});
}

}  // namespace tg
