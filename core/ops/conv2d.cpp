// conv2d: validation, the forward, its named backward, and which kernel runs.
#include "core/ops/conv2d.hpp"

#include <atomic>

#include "core/autograd/error.hpp"

namespace tg {
namespace {

std::atomic<ConvAlgorithm> g_algorithm{ConvAlgorithm::Auto};

}  // namespace

// The one place that chooses a conv kernel. Stride-1 convs run the direct kernels (conv2d_direct_*.cpp):
// they read the input in place and run at ~80% of the FMA peak, about twice the im2col + SGEMM path on these
// nets' shapes. Strided convs run im2col + SGEMM (conv2d_im2col.cpp). set_conv_algorithm forces one.
Conv2dKernel conv2d_kernel(const Conv2dGeometry& g) {
  const ConvAlgorithm forced = g_algorithm.load(std::memory_order_relaxed);
  if (forced == ConvAlgorithm::Im2col || !conv2d_direct_applies(g)) return Conv2dKernel::Im2col;
  return Conv2dKernel::Direct;
}

void set_conv_algorithm(ConvAlgorithm algorithm) { g_algorithm.store(algorithm); }
ConvAlgorithm conv_algorithm() { return g_algorithm.load(); }

Conv2dGeometry conv2d_geometry(const Shape& x, const Shape& weight, const Conv2dOptions& o) {
  if (x.size() != 4) fail("conv2d: expected input [N, C, H, W], got ", shape_str(x));
  if (weight.size() != 4) fail("conv2d: expected weight [Cout, Cin, Kh, Kw], got ", shape_str(weight));
  if (x[1] != weight[1]) {
    fail("conv2d: input has ", x[1], " channels but weight expects ", weight[1], ": input ", shape_str(x),
         ", weight ", shape_str(weight));
  }
  if (o.stride[0] < 1 || o.stride[1] < 1) fail("conv2d: stride must be >= 1, got ", shape_str(o.stride));
  if (o.dilation[0] < 1 || o.dilation[1] < 1)
    fail("conv2d: dilation must be >= 1, got ", shape_str(o.dilation));
  if (o.padding.h < 0 || o.padding.w < 0) {
    fail("conv2d: padding must be >= 0, got [", o.padding.h, ", ", o.padding.w, "]");
  }
  if (x[2] == 0 || x[3] == 0) fail("conv2d: the input has no pixels: ", shape_str(x));
  if (weight[0] == 0 || weight[2] == 0 || weight[3] == 0 || x[1] == 0) {
    fail("conv2d: empty weight ", shape_str(weight), " or input channels ", shape_str(x));
  }
  Conv2dGeometry g{};
  g.batch = x[0], g.c_in = x[1], g.h = x[2], g.w = x[3];
  g.c_out = weight[0], g.kh = weight[2], g.kw = weight[3];
  g.stride_h = static_cast<std::size_t>(o.stride[0]), g.stride_w = static_cast<std::size_t>(o.stride[1]);
  g.dilation_h = static_cast<std::size_t>(o.dilation[0]),
  g.dilation_w = static_cast<std::size_t>(o.dilation[1]);
  const std::size_t span_h = g.dilation_h * (g.kh - 1) + 1, span_w = g.dilation_w * (g.kw - 1) + 1;
  if (o.padding.same) {
    if (g.stride_h != 1 || g.stride_w != 1) {
      fail("conv2d: 'same' padding needs stride 1 (as in PyTorch), got ", shape_str(o.stride));
    }
    g.pad_top = (span_h - 1) / 2, g.pad_bottom = span_h - 1 - g.pad_top;
    g.pad_left = (span_w - 1) / 2, g.pad_right = span_w - 1 - g.pad_left;
  } else {
    g.pad_top = g.pad_bottom = static_cast<std::size_t>(o.padding.h);
    g.pad_left = g.pad_right = static_cast<std::size_t>(o.padding.w);
  }
  const std::size_t padded_h = g.h + g.pad_top + g.pad_bottom, padded_w = g.w + g.pad_left + g.pad_right;
  if (span_h > padded_h || span_w > padded_w) {
    fail("conv2d: kernel ", g.kh, "x", g.kw, " (spanning ", span_h, "x", span_w,
         " with dilation) is larger than the ", "padded input ", padded_h, "x", padded_w, ": input ",
         shape_str(x), ", weight ", shape_str(weight));
  }
  g.h_out = (padded_h - span_h) / g.stride_h + 1;
  g.w_out = (padded_w - span_w) / g.stride_w + 1;
  return g;
}

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& options) {
  const Conv2dGeometry g = conv2d_geometry(x.shape(), weight.shape(), options);
  if (bias.defined() && (bias.dim() != 1 || bias.shape()[0] != g.c_out)) {
    fail("conv2d: expected bias [", g.c_out, "] for weight ", shape_str(weight.shape()), ", got ",
         shape_str(bias.shape()));
  }
  Array out = Array::from_shape({g.batch, g.c_out, g.h_out, g.w_out});
  const float* b = bias.defined() ? bias.value().data() : nullptr;
  if (conv2d_kernel(g) == Conv2dKernel::Direct) {
    conv2d_direct_forward(x.value().data(), weight.value().data(), b, g, out.data());
  } else {
    conv2d_im2col_forward(x.value().data(), weight.value().data(), b, g, out.data());
  }
  std::vector<Tensor> inputs =
      bias.defined() ? std::vector<Tensor>{x, weight, bias} : std::vector<Tensor>{x, weight};
  return make_op("conv2d", std::move(out), inputs, [x, weight, bias, g](const Array& dout) {
    return conv2d_backward(dout, x, weight, bias, g);
  });
}

// dx = the conv's adjoint applied to dout, dweight[o][c][i][j] = sum of dout[n][o] * the shifted x[n][c],
// dbias[o] = sum of dout[n][o]; computed by the same kernel family the forward used (conv2d_kernel).
std::vector<Array> conv2d_backward(const Array& dout, const Tensor& x, const Tensor& weight,
                                   const Tensor& bias, const Conv2dGeometry& g) {
  Array dx = no_gradient(), dweight = no_gradient(), dbias = no_gradient();
  if (x.requires_grad()) dx = Array::from_shape(x.shape());
  if (weight.requires_grad()) dweight = Array::from_shape(weight.shape());
  const bool want_bias = bias.defined() && bias.requires_grad();
  if (want_bias) dbias = Array::from_shape(bias.shape());
  float* pdx = x.requires_grad() ? dx.data() : nullptr;
  float* pdw = weight.requires_grad() ? dweight.data() : nullptr;
  float* pdb = want_bias ? dbias.data() : nullptr;
  if (conv2d_kernel(g) == Conv2dKernel::Direct) {
    conv2d_direct_backward(dout.data(), x.value().data(), weight.value().data(), g, pdx, pdw, pdb);
  } else {
    conv2d_im2col_backward(dout.data(), x.value().data(), weight.value().data(), g, pdx, pdw, pdb);
  }
  if (bias.defined()) return {std::move(dx), std::move(dweight), std::move(dbias)};
  return {std::move(dx), std::move(dweight)};
}

}  // namespace tg
