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
    fail(name,
         ": an int8 inference pass has no backward; run it under tg::NoGradGuard (got an input that "
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

Tensor linear_int8(const Tensor& x, const LinearInt8Weights& weight, Int8Quant in, const Tensor& bias,
                   ConvActivation act, std::size_t* clipped) {
  const std::string name = "linear_int8" + suffix(false, act);
  check_no_grad(name, x);
  if (x.dim() != 2 || x.shape()[1] != weight.in)
    fail(name, ": expected input [N, ", weight.in, "], got ", shape_str(x.shape()));
  if (bias.defined() && bias.shape() != Shape{weight.out})
    fail(name, ": expected bias [", weight.out, "], got ", shape_str(bias.shape()));
  Array out = Array::from_shape({x.shape()[0], weight.out});
  const std::size_t n = linear_int8_forward(x.value().data(), x.shape()[0], weight, in,
                                            bias.defined() ? bias.value().data() : nullptr, act, out.data());
  if (clipped) *clipped += n;
  return inference_result(name, std::move(out), x);
}

}  // namespace tg
