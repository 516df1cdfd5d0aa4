#include "core/conv.hpp"

#include <algorithm>
#include <atomic>
#include <vector>

#include "core/blas.hpp"
#include "core/conv_direct.hpp"
#include "core/error.hpp"
#include "core/threads.hpp"

namespace tg {
namespace {

std::vector<Array> conv2d_backward_op(const Array& dout, const Tensor& x, const Tensor& weight, const Tensor& bias,
                                      const Conv2dGeometry& g) {
  Array dx, dweight, dbias;
  if (x.requires_grad()) dx = Array::from_shape(x.shape());
  if (weight.requires_grad()) dweight = Array::from_shape(weight.shape());
  const bool want_bias = bias.defined() && bias.requires_grad();
  if (want_bias) dbias = Array::from_shape(bias.shape());
  conv2d_backward(dout.data(), x.value().data(), weight.value().data(), g, x.requires_grad() ? dx.data() : nullptr,
                  weight.requires_grad() ? dweight.data() : nullptr, want_bias ? dbias.data() : nullptr);
  if (bias.defined()) return {std::move(dx), std::move(dweight), std::move(dbias)};
  return {std::move(dx), std::move(dweight)};
}

std::atomic<ConvAlgorithm> g_algorithm{ConvAlgorithm::Auto};

bool use_direct(const Conv2dGeometry& g) {
  return g_algorithm.load(std::memory_order_relaxed) != ConvAlgorithm::Im2col && conv2d_direct_applies(g);
}

}  // namespace

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
  if (o.dilation[0] < 1 || o.dilation[1] < 1) fail("conv2d: dilation must be >= 1, got ", shape_str(o.dilation));
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
  g.dilation_h = static_cast<std::size_t>(o.dilation[0]), g.dilation_w = static_cast<std::size_t>(o.dilation[1]);
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
    fail("conv2d: kernel ", g.kh, "x", g.kw, " (spanning ", span_h, "x", span_w, " with dilation) is larger than the ",
         "padded input ", padded_h, "x", padded_w, ": input ", shape_str(x), ", weight ", shape_str(weight));
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
  conv2d_forward(x.value().data(), weight.value().data(), bias.defined() ? bias.value().data() : nullptr, g,
                 out.data());
  std::vector<Tensor> inputs = bias.defined() ? std::vector<Tensor>{x, weight, bias} : std::vector<Tensor>{x, weight};
  return make_op("conv2d", std::move(out), inputs,
                 [x, weight, bias, g](const Array& dout) { return conv2d_backward_op(dout, x, weight, bias, g); });
}

namespace {

// The outputs o in [0, n_out) whose input coordinate o*stride + offset lies in [0, n_in): [first, last).
void valid_range(std::ptrdiff_t offset, std::size_t stride, std::size_t n_in, std::size_t n_out, std::size_t& first,
                 std::size_t& last) {
  const auto s = static_cast<std::ptrdiff_t>(stride), in = static_cast<std::ptrdiff_t>(n_in);
  const auto out = static_cast<std::ptrdiff_t>(n_out);
  const std::ptrdiff_t lo = offset >= 0 ? 0 : (-offset + s - 1) / s;          // first o with coordinate >= 0
  const std::ptrdiff_t hi = in - offset <= 0 ? 0 : (in - offset + s - 1) / s;  // first o with coordinate >= n_in
  first = static_cast<std::size_t>(std::min(lo, out));
  last = static_cast<std::size_t>(std::clamp(hi, std::min(lo, out), out));
}

}  // namespace

// cols[(c*Kh + i)*Kw + j][oh*Wout + ow] = x[c][oh*sh - pad_top + i*dh][ow*sw - pad_left + j*dw], 0 outside.
// For each row (c, i, j) the valid output rows [oh0, oh1) and columns [ow0, ow1) are computed once; inside
// them every element is a plain copy (contiguous when stride_w = 1), outside them zeros.
void im2col(const float* x, const Conv2dGeometry& g, float* cols, std::size_t row_stride) {
  const std::size_t hw = g.pixels_out(), w_out = g.w_out, sw = g.stride_w;
  for (std::size_t c = 0; c < g.c_in; ++c) {
    const float* plane = x + c * g.h * g.w;
    for (std::size_t i = 0; i < g.kh; ++i) {
      const auto ih0 = static_cast<std::ptrdiff_t>(i * g.dilation_h) - static_cast<std::ptrdiff_t>(g.pad_top);
      std::size_t oh0 = 0, oh1 = 0;
      valid_range(ih0, g.stride_h, g.h, g.h_out, oh0, oh1);
      for (std::size_t j = 0; j < g.kw; ++j) {
        float* out = cols + ((c * g.kh + i) * g.kw + j) * row_stride;  // this image's [Hout, Wout] block
        const auto iw0 = static_cast<std::ptrdiff_t>(j * g.dilation_w) - static_cast<std::ptrdiff_t>(g.pad_left);
        std::size_t ow0 = 0, ow1 = 0;
        valid_range(iw0, sw, g.w, w_out, ow0, ow1);
        std::fill(out, out + oh0 * w_out, 0.f);
        for (std::size_t oh = oh0; oh < oh1; ++oh) {
          float* dst = out + oh * w_out;
          const float* src = plane + static_cast<std::size_t>(static_cast<std::ptrdiff_t>(oh * g.stride_h) + ih0) * g.w;
          for (std::size_t ow = 0; ow < ow0; ++ow) dst[ow] = 0.f;
          if (sw == 1) {
            for (std::size_t ow = ow0; ow < ow1; ++ow) dst[ow] = src[static_cast<std::ptrdiff_t>(ow) + iw0];
          } else {
            for (std::size_t ow = ow0; ow < ow1; ++ow) dst[ow] = src[static_cast<std::ptrdiff_t>(ow * sw) + iw0];
          }
          for (std::size_t ow = ow1; ow < w_out; ++ow) dst[ow] = 0.f;
        }
        std::fill(out + oh1 * w_out, out + hw, 0.f);
      }
    }
  }
}

// The adjoint of im2col: every column entry adds into the input pixel it was copied from.
void col2im(const float* cols, const Conv2dGeometry& g, float* dx, std::size_t row_stride) {
  const std::size_t w_out = g.w_out, sw = g.stride_w;
  for (std::size_t c = 0; c < g.c_in; ++c) {
    float* plane = dx + c * g.h * g.w;
    for (std::size_t i = 0; i < g.kh; ++i) {
      const auto ih0 = static_cast<std::ptrdiff_t>(i * g.dilation_h) - static_cast<std::ptrdiff_t>(g.pad_top);
      std::size_t oh0 = 0, oh1 = 0;
      valid_range(ih0, g.stride_h, g.h, g.h_out, oh0, oh1);
      for (std::size_t j = 0; j < g.kw; ++j) {
        const float* in = cols + ((c * g.kh + i) * g.kw + j) * row_stride;
        const auto iw0 = static_cast<std::ptrdiff_t>(j * g.dilation_w) - static_cast<std::ptrdiff_t>(g.pad_left);
        std::size_t ow0 = 0, ow1 = 0;
        valid_range(iw0, sw, g.w, w_out, ow0, ow1);
        for (std::size_t oh = oh0; oh < oh1; ++oh) {
          const float* src = in + oh * w_out;
          float* dst = plane + static_cast<std::size_t>(static_cast<std::ptrdiff_t>(oh * g.stride_h) + ih0) * g.w;
          if (sw == 1) {
            for (std::size_t ow = ow0; ow < ow1; ++ow) dst[static_cast<std::ptrdiff_t>(ow) + iw0] += src[ow];
          } else {
            for (std::size_t ow = ow0; ow < ow1; ++ow) dst[static_cast<std::ptrdiff_t>(ow * sw) + iw0] += src[ow];
          }
        }
      }
    }
  }
}

namespace {

// Images that go through im2col + SGEMM together: enough for a wide GEMM, few enough that the columns
// (K x images*HW floats) stay in the L2 cache between im2col writing them and SGEMM reading them.
constexpr std::size_t kChunkBytes = 384 * 1024;

std::size_t images_per_chunk(const Conv2dGeometry& g) {
  const std::size_t per_image = g.patch() * g.pixels_out() * sizeof(float);
  return std::clamp<std::size_t>(kChunkBytes / std::max<std::size_t>(per_image, 1), 1, std::max<std::size_t>(g.batch, 1));
}

}  // namespace

// Chunks of images in parallel over tapegrad's threads; per chunk of m images, with this thread's buffers:
//   cols [K, m*HW] = im2col of the m images side by side;  Y [Cout, m*HW] = weight [Cout, K] x cols;
//   out[n][o][p] = Y[o][(n - first)*HW + p] + bias[o]
void conv2d_forward(const float* x, const float* weight, const float* bias, const Conv2dGeometry& g, float* out) {
  if (use_direct(g)) return conv2d_direct_forward(x, weight, bias, g, out);
  const std::size_t k = g.patch(), hw = g.pixels_out();
  const std::size_t in_size = g.c_in * g.h * g.w, out_size = g.c_out * hw;
  const std::size_t chunk = images_per_chunk(g), chunks = (g.batch + chunk - 1) / chunk;
  parallel_for(chunks, [&](std::size_t c0, std::size_t c1) {
    for (std::size_t c = c0; c < c1; ++c) {
      const std::size_t n0 = c * chunk, n1 = std::min(g.batch, n0 + chunk), width = (n1 - n0) * hw;
      float* cols = conv_scratch(kColumns, k * width);
      float* y = conv_scratch(kProducts, g.c_out * width);
      for (std::size_t n = n0; n < n1; ++n) im2col(x + n * in_size, g, cols + (n - n0) * hw, width);
      sgemm(false, false, g.c_out, width, k, 1.f, weight, cols, 0.f, y);
      for (std::size_t n = n0; n < n1; ++n) {
        for (std::size_t o = 0; o < g.c_out; ++o) {
          const float* src = y + o * width + (n - n0) * hw;
          float* dst = out + n * out_size + o * hw;
          const float b = bias ? bias[o] : 0.f;
          for (std::size_t p = 0; p < hw; ++p) dst[p] = src[p] + b;
        }
      }
    }
  });
}

// The same chunks, split into one contiguous part per thread. Per chunk, with dY [Cout, m*HW] gathered from
// dout and cols = im2col of the chunk [K, m*HW]:
//   dbias[o] += sum of row o of dY ;  dweight [Cout, K] += dY cols^T ;
//   dcols [K, m*HW] = weight^T dY, then dx = col2im(dcols) image by image.
// Each part accumulates its own dweight and dbias; the parts are added in order at the end, so results
// depend only on the thread count.
void conv2d_backward(const float* dout, const float* x, const float* weight, const Conv2dGeometry& g, float* dx,
                     float* dweight, float* dbias) {
  if (use_direct(g)) return conv2d_direct_backward(dout, x, weight, g, dx, dweight, dbias);
  const std::size_t k = g.patch(), hw = g.pixels_out();
  const std::size_t in_size = g.c_in * g.h * g.w, out_size = g.c_out * hw;
  const std::size_t chunk = images_per_chunk(g), chunks = (g.batch + chunk - 1) / chunk;
  const std::size_t parts = std::min<std::size_t>(static_cast<std::size_t>(num_threads()), chunks);
  std::vector<float> dweight_parts(dweight && parts > 1 ? parts * g.c_out * k : 0, 0.f);
  std::vector<double> dbias_parts(dbias ? parts * g.c_out : 0, 0.0);
  parallel_for(parts, [&](std::size_t p0, std::size_t p1) {
    for (std::size_t part = p0; part < p1; ++part) {
      float* dw = dweight ? (parts > 1 ? dweight_parts.data() + part * g.c_out * k : dweight) : nullptr;
      if (dw && parts == 1) std::fill(dw, dw + g.c_out * k, 0.f);
      for (std::size_t c = part * chunks / parts; c < (part + 1) * chunks / parts; ++c) {
        const std::size_t n0 = c * chunk, n1 = std::min(g.batch, n0 + chunk), width = (n1 - n0) * hw;
        float* dy = conv_scratch(kProducts, g.c_out * width);
        for (std::size_t n = n0; n < n1; ++n) {
          for (std::size_t o = 0; o < g.c_out; ++o) {
            std::copy_n(dout + n * out_size + o * hw, hw, dy + o * width + (n - n0) * hw);
          }
        }
        if (dbias) {
          for (std::size_t o = 0; o < g.c_out; ++o) dbias_parts[part * g.c_out + o] += sum_row(dy + o * width, width);
        }
        float* cols = conv_scratch(kColumns, k * width);
        if (dw) {
          for (std::size_t n = n0; n < n1; ++n) im2col(x + n * in_size, g, cols + (n - n0) * hw, width);
          sgemm(false, true, g.c_out, k, width, 1.f, dy, cols, 1.f, dw);
        }
        if (dx) {
          sgemm(true, false, k, width, g.c_out, 1.f, weight, dy, 0.f, cols);  // cols now holds dcols
          for (std::size_t n = n0; n < n1; ++n) {
            std::fill(dx + n * in_size, dx + (n + 1) * in_size, 0.f);
            col2im(cols + (n - n0) * hw, g, dx + n * in_size, width);
          }
        }
      }
    }
  });
  if (dweight && parts == 0) std::fill(dweight, dweight + g.c_out * k, 0.f);  // an empty batch
  if (dweight && parts > 1) {
    std::copy_n(dweight_parts.data(), g.c_out * k, dweight);
    for (std::size_t part = 1; part < parts; ++part) {
      const float* src = dweight_parts.data() + part * g.c_out * k;
      for (std::size_t i = 0; i < g.c_out * k; ++i) dweight[i] += src[i];
    }
  }
  if (dbias) sum_bias_parts(dbias_parts.data(), parts, g.c_out, dbias);
}

void conv2d_forward_reference(const float* x, const float* weight, const float* bias, const Conv2dGeometry& g,
                              float* out) {
  for (std::size_t n = 0; n < g.batch; ++n)
    for (std::size_t o = 0; o < g.c_out; ++o)
      for (std::size_t oh = 0; oh < g.h_out; ++oh)
        for (std::size_t ow = 0; ow < g.w_out; ++ow) {
          double acc = bias ? bias[o] : 0.0;
          for (std::size_t c = 0; c < g.c_in; ++c)
            for (std::size_t i = 0; i < g.kh; ++i)
              for (std::size_t j = 0; j < g.kw; ++j) {
                const auto ih = static_cast<std::ptrdiff_t>(oh * g.stride_h + i * g.dilation_h) -
                                static_cast<std::ptrdiff_t>(g.pad_top);
                const auto iw = static_cast<std::ptrdiff_t>(ow * g.stride_w + j * g.dilation_w) -
                                static_cast<std::ptrdiff_t>(g.pad_left);
                if (ih < 0 || iw < 0 || ih >= static_cast<std::ptrdiff_t>(g.h) ||
                    iw >= static_cast<std::ptrdiff_t>(g.w))
                  continue;
                acc += static_cast<double>(x[((n * g.c_in + c) * g.h + static_cast<std::size_t>(ih)) * g.w +
                                             static_cast<std::size_t>(iw)]) *
                       weight[((o * g.c_in + c) * g.kh + i) * g.kw + j];
              }
          out[((n * g.c_out + o) * g.h_out + oh) * g.w_out + ow] = static_cast<float>(acc);
        }
}

}  // namespace tg
