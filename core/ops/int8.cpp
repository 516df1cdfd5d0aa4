// The int8 inference passes of fused.hpp (docs/int8.md): shape checks, then the kernels of
// core/kernels/conv2d_int8.cpp.
#include <string>
#include <utility>

#include "core/base/error.hpp"
#include "core/ops/fused.hpp"

namespace tg {
namespace {

std::string suffix(bool residual, ConvActivation act) {
  std::string s = residual ? "+add" : "";
  if (act == ConvActivation::ReLU) s += "+relu";
  if (act == ConvActivation::ReLU6) s += "+relu6";
  return s;
}

Tensor inference_result(std::string name, Array out, const Tensor& x) {
  return make_op(std::move(name), std::move(out), {x},
                 [](const Array&) -> std::vector<Array> { fail("an int8 inference pass has no backward"); });
}

void check_no_grad(const std::string& name, const Tensor& x) {
  if (grad_enabled() && x.requires_grad())
    fail(name, ": an int8 inference pass has no backward; run it under tg::NoGradGuard (got an input that "
               "requires grad while gradients are recorded)");
}

}  // namespace

Tensor conv2d_int8(const Tensor& x, const Conv2dInt8Weights& weight, const Shape& weight_shape,
                   const Conv2dOptions& options, Int8Quant in, const Tensor& bias, const Tensor& residual,
                   ConvActivation act, std::size_t* clipped) {
  const std::string name = "conv2d_int8" + suffix(residual.defined(), act);
  check_no_grad(name, x);
  const Conv2dGeometry g = conv2d_geometry(x.shape(), weight_shape, options);
  if (bias.defined() && bias.shape() != Shape{g.c_out})
    fail(name, ": expected bias [", g.c_out, "], got ", shape_str(bias.shape()));
  const Shape out_shape{g.batch, g.c_out, g.h_out, g.w_out};
  if (residual.defined() && residual.shape() != out_shape)
    fail(name, ": the residual ", shape_str(residual.shape()), " differs from the conv's output ",
         shape_str(out_shape), "; a residual add never broadcasts");
  Array out = Array::from_shape(out_shape);
  const Int8Epilogue e{bias.defined() ? bias.value().data() : nullptr,
                       residual.defined() ? residual.value().data() : nullptr, act};
  const std::size_t n = conv2d_int8_forward(x.value().data(), weight, g, in, e, out.data());
  if (clipped) *clipped += n;
  return inference_result(name, std::move(out), x);
}

Tensor linear_int8(const Tensor& x, const Conv2dInt8Weights& weight, std::size_t in_features, Int8Quant in,
                   const Tensor& bias, ConvActivation act, std::size_t* clipped) {
  const std::string name = "linear_int8" + suffix(false, act);
  check_no_grad(name, x);
  if (x.dim() != 2 || x.shape()[1] != in_features)
    fail(name, ": expected input [N, ", in_features, "], got ", shape_str(x.shape()));
  const std::size_t batch = x.shape()[0], out_features = weight.c_out;
  if (bias.defined() && bias.shape() != Shape{out_features})
    fail(name, ": expected bias [", out_features, "], got ", shape_str(bias.shape()));
  // The batch as one image [in, 1, N] (a transpose), a 1x1 conv, and back.
  std::vector<float> image(in_features * batch), conv_out(out_features * batch);
  const float* xv = x.value().data();
  for (std::size_t n = 0; n < batch; ++n)
    for (std::size_t k = 0; k < in_features; ++k) image[k * batch + n] = xv[n * in_features + k];
  const Conv2dGeometry g =
      conv2d_geometry(Shape{1, in_features, 1, batch}, Shape{out_features, in_features, 1, 1}, {});
  const Int8Epilogue e{bias.defined() ? bias.value().data() : nullptr, nullptr, act};
  const std::size_t n_clipped = conv2d_int8_forward(image.data(), weight, g, in, e, conv_out.data());
  if (clipped) *clipped += n_clipped;
  Array out = Array::from_shape({batch, out_features});
  float* ov = out.data();
  for (std::size_t o = 0; o < out_features; ++o)
    for (std::size_t n = 0; n < batch; ++n) ov[n * out_features + o] = conv_out[o * batch + n];
  return inference_result(name, std::move(out), x);
}

}  // namespace tg
