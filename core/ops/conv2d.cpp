// conv2d: validation, the forward, its named backward, and which kernel runs.
#include "core/ops/conv2d.hpp"
#include "core/ops/fused.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <string>

#include "core/base/error.hpp"
#include "core/runtime/precision.hpp"

namespace tg {
namespace {

std::atomic<ConvAlgorithm> g_algorithm{ConvAlgorithm::Auto};

using ForwardKernel = void (*)(const float*, const float*, const float*, const Conv2dGeometry&, float*);
using BackwardKernel = void (*)(const float*, const float*, const float*, const Conv2dGeometry&, float*,
                                float*, float*);

ForwardKernel forward_kernel(Conv2dKernel k) {
  switch (k) {
    case Conv2dKernel::Direct:
      return conv2d_direct_forward;
    case Conv2dKernel::DirectBf16:
      return conv2d_direct_bf16_forward;
    case Conv2dKernel::Im2colBf16:
      return conv2d_im2col_bf16_forward;
    case Conv2dKernel::Depthwise:
      return conv2d_depthwise_forward;
    case Conv2dKernel::Im2col:
      break;
  }
  return conv2d_im2col_forward;
}

BackwardKernel backward_kernel(Conv2dKernel k) {
  switch (k) {
    case Conv2dKernel::Direct:
      return conv2d_direct_backward;
    case Conv2dKernel::DirectBf16:
      return conv2d_direct_bf16_backward;
    case Conv2dKernel::Im2colBf16:
      return conv2d_im2col_bf16_backward;
    case Conv2dKernel::Depthwise:
      return conv2d_depthwise_backward;
    case Conv2dKernel::Im2col:
      break;
  }
  return conv2d_im2col_backward;
}

// One group's conv: its Cin/G input and Cout/G output channels.
Conv2dGeometry one_group(const Conv2dGeometry& g) {
  Conv2dGeometry one = g;
  one.c_in = g.c_in / g.groups, one.c_out = g.c_out / g.groups, one.groups = 1;
  return one;
}

// `channels` planes of `plane` floats per image, from images `src_channels` planes apart to images
// `dst_channels` planes apart (a group's channel slice to or from a contiguous batch).
void copy_channels(const float* src, std::size_t src_channels, float* dst, std::size_t dst_channels,
                   std::size_t channels, std::size_t batch, std::size_t plane) {
  for (std::size_t n = 0; n < batch; ++n)
    std::copy_n(src + n * src_channels * plane, channels * plane, dst + n * dst_channels * plane);
}

// The generic grouped path: per group, its slice of x gathered into a contiguous batch, the kernel of one
// group run on it, its output slice scattered into out. The kernels stay those of groups = 1, untouched; the
// price is one extra pass over x and out.
void grouped_forward(ForwardKernel kernel, const float* x, const float* weight, const float* bias,
                     const Conv2dGeometry& g, float* out) {
  const Conv2dGeometry one = one_group(g);
  const std::size_t plane = g.h * g.w, plane_out = g.pixels_out();
  std::vector<float> xs(g.batch * one.c_in * plane), ys(g.batch * one.c_out * plane_out);
  for (std::size_t group = 0; group < g.groups; ++group) {
    copy_channels(x + group * one.c_in * plane, g.c_in, xs.data(), one.c_in, one.c_in, g.batch, plane);
    kernel(xs.data(), weight + group * one.c_out * one.patch(), bias ? bias + group * one.c_out : nullptr,
           one, ys.data());
    copy_channels(ys.data(), one.c_out, out + group * one.c_out * plane_out, g.c_out, one.c_out, g.batch,
                  plane_out);
  }
}

// The same per group: x and dout slices gathered, the group's dx scattered back; its dweight rows and dbias
// entries are contiguous and written in place.
void grouped_backward(BackwardKernel kernel, const float* dout, const float* x, const float* weight,
                      const Conv2dGeometry& g, float* dx, float* dweight, float* dbias) {
  const Conv2dGeometry one = one_group(g);
  const std::size_t plane = g.h * g.w, plane_out = g.pixels_out();
  std::vector<float> xs(g.batch * one.c_in * plane), dys(g.batch * one.c_out * plane_out);
  std::vector<float> dxs(dx ? xs.size() : 0);
  for (std::size_t group = 0; group < g.groups; ++group) {
    copy_channels(x + group * one.c_in * plane, g.c_in, xs.data(), one.c_in, one.c_in, g.batch, plane);
    copy_channels(dout + group * one.c_out * plane_out, g.c_out, dys.data(), one.c_out, one.c_out, g.batch,
                  plane_out);
    const std::size_t w0 = group * one.c_out * one.patch();
    kernel(dys.data(), xs.data(), weight + w0, one, dx ? dxs.data() : nullptr,
           dweight ? dweight + w0 : nullptr, dbias ? dbias + group * one.c_out : nullptr);
    if (dx)
      copy_channels(dxs.data(), one.c_in, dx + group * one.c_in * plane, g.c_in, one.c_in, g.batch, plane);
  }
}

// tg::Error unless bias is undefined or [Cout]; `op` names the op in the message.
void check_bias(const std::string& op, const Tensor& bias, const Tensor& weight, const Conv2dGeometry& g) {
  if (bias.defined() && (bias.dim() != 1 || bias.shape()[0] != g.c_out)) {
    fail(op, ": expected bias [", g.c_out, "] for weight ", shape_str(weight.shape()), ", got ",
         shape_str(bias.shape()));
  }
}

// The forward of `kernel` on the whole conv: the depthwise kernel and one group run directly, more groups
// group by group.
void run_forward(Conv2dKernel kernel, const float* x, const float* weight, const float* bias,
                 const Conv2dGeometry& g, float* out) {
  if (kernel == Conv2dKernel::Depthwise || g.groups == 1) {
    forward_kernel(kernel)(x, weight, bias, g, out);
  } else {
    grouped_forward(forward_kernel(kernel), x, weight, bias, g, out);
  }
}

// The forward with `e` applied to every output: built into the direct kernel as it writes each row, the
// others' output then one pass of its own (conv2d_epilogue).
void run_forward_epilogue(Conv2dKernel kernel, const float* x, const float* weight, const float* bias,
                          const Conv2dGeometry& g, const ConvEpilogue& e, float* out) {
  if (kernel == Conv2dKernel::Direct && g.groups == 1) {
    conv2d_direct_forward_fused(x, weight, bias, g, e, out);
  } else {
    run_forward(kernel, x, weight, bias, g, out);
    conv2d_epilogue(out, g, e);
  }
}

}  // namespace

// The one place that chooses a conv kernel. Depthwise convs (groups = Cin = Cout) run their own kernel
// (conv2d_depthwise_*.cpp): one 2-D filter per plane, where the others would do a tiny GEMM per channel.
// Otherwise a conv runs group by group (one group when groups = 1) with the kernel chosen for one group:
// stride-1 convs run the direct kernels (conv2d_direct_*.cpp): they read the input in place and run at ~80%
// of the FMA peak, about twice the im2col + SGEMM path on these nets' shapes. Strided convs run im2col +
// SGEMM (conv2d_im2col.cpp). Under tg::set_precision(Precision::bf16) both run their bf16 twins
// (conv2d_direct_bf16.cpp, im2col with sgemm_bf16); depthwise convs stay fp32. set_conv_algorithm forces
// im2col or direct (depthwise convs then go group by group too, as channel-multiplier convs, groups = Cin <
// Cout, always do).
Conv2dKernel conv2d_kernel(const Conv2dGeometry& g) {
  const ConvAlgorithm forced = g_algorithm.load(std::memory_order_relaxed);
  if (forced == ConvAlgorithm::Auto && conv2d_depthwise_applies(g)) return Conv2dKernel::Depthwise;
  const bool bf16 = precision() == Precision::bf16;
  if (forced == ConvAlgorithm::Im2col || !conv2d_direct_applies(g))
    return bf16 ? Conv2dKernel::Im2colBf16 : Conv2dKernel::Im2col;
  return bf16 ? Conv2dKernel::DirectBf16 : Conv2dKernel::Direct;
}

void set_conv_algorithm(ConvAlgorithm algorithm) { g_algorithm.store(algorithm); }
ConvAlgorithm conv_algorithm() { return g_algorithm.load(); }

Conv2dGeometry conv2d_geometry(const Shape& x, const Shape& weight, const Conv2dOptions& o) {
  if (x.size() != 4) fail("conv2d: expected input [N, C, H, W], got ", shape_str(x));
  if (weight.size() != 4) fail("conv2d: expected weight [Cout, Cin, Kh, Kw], got ", shape_str(weight));
  if (o.groups < 1) fail("conv2d: groups must be >= 1, got ", o.groups);
  const auto groups = static_cast<std::size_t>(o.groups);
  if (x[1] % groups != 0) {
    fail("conv2d: groups=", groups, " does not divide the ", x[1], " input channels: input ", shape_str(x),
         ", weight ", shape_str(weight));
  }
  if (weight[0] % groups != 0) {
    fail("conv2d: groups=", groups, " does not divide the ", weight[0], " output channels: input ",
         shape_str(x), ", weight ", shape_str(weight));
  }
  if (groups > 1 && x[1] / groups != weight[1]) {
    fail("conv2d: with groups=", groups, " each filter sees ", x[1] / groups, " of the ", x[1],
         " input channels, but weight has ", weight[1], ": input ", shape_str(x), ", weight ",
         shape_str(weight));
  }
  if (x[1] != weight[1] * groups) {
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
  g.c_out = weight[0], g.kh = weight[2], g.kw = weight[3], g.groups = groups;
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
  check_bias("conv2d", bias, weight, g);
  Array out = Array::from_shape({g.batch, g.c_out, g.h_out, g.w_out});
  const float* b = bias.defined() ? bias.value().data() : nullptr;
  const Conv2dKernel kernel = conv2d_kernel(g);
  run_forward(kernel, x.value().data(), weight.value().data(), b, g, out.data());
  std::vector<Tensor> inputs =
      bias.defined() ? std::vector<Tensor>{x, weight, bias} : std::vector<Tensor>{x, weight};
  return make_op("conv2d", std::move(out), inputs, [x, weight, bias, g, kernel](const Array& dout) {
    return conv2d_backward(dout, x, weight, bias, g, kernel);
  });
}

Tensor conv2d_fused(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& options,
                    const ConvFollowers& f) {
  const bool bn = f.bn_weight.defined();
  std::string name = "conv2d";
  if (bn) name += "+batch_norm2d";
  if (f.residual.defined()) name += "+add";
  if (f.act == ConvActivation::ReLU) name += "+relu";
  if (f.act == ConvActivation::ReLU6) name += "+relu6";
  if (grad_enabled() &&
      (x.requires_grad() || weight.requires_grad() || (bias.defined() && bias.requires_grad())))
    fail(name,
         ": a fused inference pass has no backward; run it under tg::NoGradGuard (got an input that "
         "requires grad while gradients are recorded)");
  const Conv2dGeometry g = conv2d_geometry(x.shape(), weight.shape(), options);
  check_bias(name, bias, weight, g);
  std::vector<float> scale;
  ConvEpilogue e;
  e.act = f.act;
  if (bn) {
    for (const Tensor* t : {&f.bn_weight, &f.bn_bias, &f.bn_mean, &f.bn_var}) {
      if (!t->defined() || t->shape() != Shape{g.c_out})
        fail(name, ": the batch norm's weight, bias, running mean and variance must all be [", g.c_out,
             "] for ", g.c_out, " output channels");
    }
    scale.resize(g.c_out);
    const float *gamma = f.bn_weight.value().data(), *var = f.bn_var.value().data();
    for (std::size_t c = 0; c < g.c_out; ++c) scale[c] = gamma[c] * (1.f / std::sqrt(var[c] + f.bn_eps));
    e.mean = f.bn_mean.value().data(), e.scale = scale.data(), e.shift = f.bn_bias.value().data();
  }
  const Shape out_shape{g.batch, g.c_out, g.h_out, g.w_out};
  if (f.residual.defined()) {
    if (f.residual.shape() != out_shape) {
      fail(name, ": the residual ", shape_str(f.residual.shape()), " differs from the conv's output ",
           shape_str(out_shape), "; a residual add never broadcasts");
    }
    e.residual = f.residual.value().data();
  }
  Array out = Array::from_shape(out_shape);
  const float* b = bias.defined() ? bias.value().data() : nullptr;
  run_forward_epilogue(conv2d_kernel(g), x.value().data(), weight.value().data(), b, g, e, out.data());
  return make_op(std::move(name), std::move(out), {x, weight},
                 [](const Array&) -> std::vector<Array> { fail("a fused inference pass has no backward"); });
}

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& options,
              ActivationAhead& ahead) {
  ahead.fused = false;
  std::vector<Tensor> inputs =
      bias.defined() ? std::vector<Tensor>{x, weight, bias} : std::vector<Tensor>{x, weight};
  if (ahead.act == ConvActivation::None || !records(inputs)) return conv2d(x, weight, bias, options);
  const Conv2dGeometry g = conv2d_geometry(x.shape(), weight.shape(), options);
  check_bias("conv2d", bias, weight, g);
  const Shape out_shape{g.batch, g.c_out, g.h_out, g.w_out};
  Array activated = Array::from_shape(out_shape);
  const float* b = bias.defined() ? bias.value().data() : nullptr;
  const Conv2dKernel kernel = conv2d_kernel(g);
  ConvEpilogue e;
  e.act = ahead.act;
  run_forward_epilogue(kernel, x.value().data(), weight.value().data(), b, g, e, activated.data());
  ahead.activated = std::move(activated);
  ahead.fused = true;
  // conv2d's forward again, for a read of the output before backward (gdb, a user's observer or code)
  auto recompute = [x, weight, bias, g, kernel, out_shape] {
    Array out = Array::from_shape(out_shape);
    run_forward(kernel, x.value().data(), weight.value().data(),
                bias.defined() ? bias.value().data() : nullptr, g, out.data());
    return out;
  };
  Tensor out = make_unstored_op("conv2d", out_shape, std::move(recompute), inputs,
                                [x, weight, bias, g, kernel](const Array& dout) {
                                  return conv2d_backward(dout, x, weight, bias, g, kernel);
                                });
  ahead.output = out.node();
  return out;
}

// dx = the conv's adjoint applied to dout, dweight[o][c][i][j] = sum of dout[n][o] * the shifted x[n][c]
// (c in o's group), dbias[o] = sum of dout[n][o]; computed by the kernel family the forward ran (its
// conv2d_kernel(), recorded in the tape entry), group by group as the forward.
std::vector<Array> conv2d_backward(const Array& dout, const Tensor& x, const Tensor& weight,
                                   const Tensor& bias, const Conv2dGeometry& g, Conv2dKernel kernel) {
  Array dx = no_gradient(), dweight = no_gradient(), dbias = no_gradient();
  if (x.requires_grad()) dx = Array::from_shape(x.shape());
  if (weight.requires_grad()) dweight = Array::from_shape(weight.shape());
  const bool want_bias = bias.defined() && bias.requires_grad();
  if (want_bias) dbias = Array::from_shape(bias.shape());
  float* pdx = x.requires_grad() ? dx.data() : nullptr;
  float* pdw = weight.requires_grad() ? dweight.data() : nullptr;
  float* pdb = want_bias ? dbias.data() : nullptr;
  const float *px = x.value().data(), *pw = weight.value().data();
  if (kernel == Conv2dKernel::Depthwise || g.groups == 1) {
    backward_kernel(kernel)(dout.data(), px, pw, g, pdx, pdw, pdb);
  } else {
    grouped_backward(backward_kernel(kernel), dout.data(), px, pw, g, pdx, pdw, pdb);
  }
  if (bias.defined()) return gradients(std::move(dx), std::move(dweight), std::move(dbias));
  return gradients(std::move(dx), std::move(dweight));
}

}  // namespace tg
