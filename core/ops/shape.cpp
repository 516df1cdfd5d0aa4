// Reductions to a scalar, and ops that only change the shape.
#include "core/ops/shape.hpp"

#include <functional>
#include <numeric>

#include "core/base/error.hpp"

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

// An array of `shape` with every element v.
Array filled(const Shape& shape, float v) {
  return Array(xt::full_like(xt::xarray<float>::from_shape(shape), v));
}

// x's data under a new shape of as many elements.
Array reshaped(const Array& x, const Shape& shape) {
  Array out = x;
  out.reshape(shape);
  return out;
}

}  // namespace

Tensor sum(const Tensor& x) {
  const Shape shape = x.shape();
  return make_op("sum", scalar_array(sum_of(x.value())), {x},
                 [shape](const Array& dout) { return sum_backward(dout, shape); });
}

// d(sum x)/dx = 1 everywhere, times the incoming scalar gradient
std::vector<Array> sum_backward(const Array& dout, const Shape& x_shape) {
  return gradients(filled(x_shape, dout.data()[0]));
}

Tensor mean(const Tensor& x) {
  const std::size_t n = x.numel();
  if (n == 0) fail("mean: the input is empty (shape ", shape_str(x.shape()), ")");
  const Shape shape = x.shape();
  return make_op("mean", scalar_array(sum_of(x.value()) * (1.f / static_cast<float>(n))), {x},
                 [shape](const Array& dout) { return mean_backward(dout, shape); });
}

// d(mean x)/dx = 1/n everywhere, times the incoming scalar gradient
std::vector<Array> mean_backward(const Array& dout, const Shape& x_shape) {
  const std::size_t n = std::accumulate(x_shape.begin(), x_shape.end(), std::size_t{1}, std::multiplies<>());
  return gradients(filled(x_shape, dout.data()[0] * (1.f / static_cast<float>(n))));
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
  const Shape in_shape = x.shape();
  return make_op("reshape", reshaped(x.value(), target), {x},
                 [in_shape](const Array& dout) { return reshape_backward(dout, in_shape); });
}

// The gradient is dout with the input's shape: a reshape moves no element.
std::vector<Array> reshape_backward(const Array& dout, const Shape& x_shape) {
  return gradients(reshaped(dout, x_shape));
}

Tensor flatten(const Tensor& x) {
  if (x.dim() < 1) fail("flatten: expected [N, ...], got a 0-d tensor");
  const std::size_t n = x.shape()[0];
  const Shape target{n, n == 0 ? 0 : x.numel() / n};
  const Shape in_shape = x.shape();
  return make_op("flatten", reshaped(x.value(), target), {x},
                 [in_shape](const Array& dout) { return flatten_backward(dout, in_shape); });
}

// As reshape: dout [N, prod(...)] back to x's shape.
std::vector<Array> flatten_backward(const Array& dout, const Shape& x_shape) {
  return gradients(reshaped(dout, x_shape));
}

}  // namespace tg
