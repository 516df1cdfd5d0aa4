#include "core/pool.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>

#include "core/error.hpp"
#include "core/threads.hpp"

namespace tg {

Pool2dGeometry max_pool2d_geometry(const Shape& x, const MaxPool2dOptions& o) {
  if (x.size() != 4) fail("max_pool2d: expected input [N, C, H, W], got ", shape_str(x));
  if (x[2] == 0 || x[3] == 0) fail("max_pool2d: the input has no pixels: ", shape_str(x));
  if (o.kernel[0] < 1 || o.kernel[1] < 1) fail("max_pool2d: kernel must be >= 1, got ", shape_str(o.kernel));
  if (o.stride[0] < 0 || o.stride[1] < 0) fail("max_pool2d: stride must be >= 1, got ", shape_str(o.stride));
  if (o.padding[0] < 0 || o.padding[1] < 0 || 2 * o.padding[0] > o.kernel[0] || 2 * o.padding[1] > o.kernel[1]) {
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
  max_pool2d_forward(x.value().data(), g, out.data(), argmax->data());
  const Shape in_shape = s;
  return make_op("max_pool2d", std::move(out), {x}, [argmax, g, in_shape](const Array& dout) {
    Array dx = Array::from_shape(in_shape);
    max_pool2d_backward(dout.data(), argmax->data(), g, dx.data());
    return std::vector<Array>{std::move(dx)};
  });
}

namespace {

// Unpadded windows (the common case) need no clipping: one pass over kh x kw cells per output, branch-free
// (random data makes "is this the new maximum?" a coin flip, and mispredicted branches cost more than the
// comparisons). PyTorch's rule: a cell replaces the maximum when it is greater or NaN, so the first maximum
// wins ties and NaN propagates.
// KH, KW > 0 fix the window size at compile time (the common 2x2, 3x3, 4x4), which lets the compiler keep the
// loop free of branches; 0 means "read it from g".
template <std::size_t KH, std::size_t KW>
void max_pool2d_forward_unpadded(const float* x, const Pool2dGeometry& g, float* out, std::int32_t* argmax,
                                 std::size_t p0, std::size_t p1) {
  const std::size_t out_plane = g.h_out * g.w_out, w = g.w;
  const std::size_t kh = KH ? KH : g.kh, kw = KW ? KW : g.kw;
  for (std::size_t p = p0; p < p1; ++p) {
    const float* in = x + p * g.h * w;
    float* o = out + p * out_plane;
    std::int32_t* a = argmax + p * out_plane;
    for (std::size_t oh = 0; oh < g.h_out; ++oh) {
      for (std::size_t ow = 0; ow < g.w_out; ++ow) {
        const std::size_t corner = oh * g.stride_h * w + ow * g.stride_w;
        float best = in[corner];
        auto best_index = static_cast<std::int32_t>(corner);
        for (std::size_t i = 0; i < kh; ++i) {
          for (std::size_t j = 0; j < kw; ++j) {
            const std::size_t index = corner + i * w + j;
            const float v = in[index];
            const bool take = (v > best) | (v != v);
            best = take ? v : best;
            best_index = take ? static_cast<std::int32_t>(index) : best_index;
          }
        }
        o[oh * g.w_out + ow] = best;
        a[oh * g.w_out + ow] = best_index;
      }
    }
  }
}

}  // namespace

void max_pool2d_forward(const float* x, const Pool2dGeometry& g, float* out, std::int32_t* argmax) {
  if (g.pad_h == 0 && g.pad_w == 0) {
    auto kernel = max_pool2d_forward_unpadded<0, 0>;
    if (g.kh == 2 && g.kw == 2) kernel = max_pool2d_forward_unpadded<2, 2>;
    if (g.kh == 3 && g.kw == 3) kernel = max_pool2d_forward_unpadded<3, 3>;
    if (g.kh == 4 && g.kw == 4) kernel = max_pool2d_forward_unpadded<4, 4>;
    parallel_for(g.planes, [&](std::size_t p0, std::size_t p1) { kernel(x, g, out, argmax, p0, p1); }, 16);
    return;
  }
  const std::size_t out_plane = g.h_out * g.w_out;
  for (std::size_t p = 0; p < g.planes; ++p) {
    const float* in = x + p * g.h * g.w;
    for (std::size_t oh = 0; oh < g.h_out; ++oh) {
      // the window's rows and columns clipped to the input: padded cells are -inf, never the maximum
      const auto top = static_cast<std::ptrdiff_t>(oh * g.stride_h) - static_cast<std::ptrdiff_t>(g.pad_h);
      const std::size_t h0 = static_cast<std::size_t>(std::max<std::ptrdiff_t>(top, 0));
      const std::size_t h1 = std::min(static_cast<std::size_t>(top + static_cast<std::ptrdiff_t>(g.kh)), g.h);
      for (std::size_t ow = 0; ow < g.w_out; ++ow) {
        const auto left = static_cast<std::ptrdiff_t>(ow * g.stride_w) - static_cast<std::ptrdiff_t>(g.pad_w);
        const std::size_t w0 = static_cast<std::size_t>(std::max<std::ptrdiff_t>(left, 0));
        const std::size_t w1 = std::min(static_cast<std::size_t>(left + static_cast<std::ptrdiff_t>(g.kw)), g.w);
        float best = -std::numeric_limits<float>::infinity();
        std::size_t best_index = h0 * g.w + w0;
        for (std::size_t ih = h0; ih < h1; ++ih) {
          for (std::size_t iw = w0; iw < w1; ++iw) {
            const float v = in[ih * g.w + iw];
            if (v > best || std::isnan(v)) {  // PyTorch's rule: the first maximum wins ties; NaN propagates
              best = v;
              best_index = ih * g.w + iw;
            }
          }
        }
        out[p * out_plane + oh * g.w_out + ow] = best;
        argmax[p * out_plane + oh * g.w_out + ow] = static_cast<std::int32_t>(best_index);
      }
    }
  }
}

void max_pool2d_backward(const float* dout, const std::int32_t* argmax, const Pool2dGeometry& g, float* dx) {
  const std::size_t out_plane = g.h_out * g.w_out, in_plane = g.h * g.w;
  parallel_for(g.planes, [&](std::size_t p0, std::size_t p1) {  // planes are disjoint
    std::fill(dx + p0 * in_plane, dx + p1 * in_plane, 0.f);
    for (std::size_t p = p0; p < p1; ++p) {
      float* d = dx + p * in_plane;
      for (std::size_t k = 0; k < out_plane; ++k) d[argmax[p * out_plane + k]] += dout[p * out_plane + k];
    }
  }, 16);
}

}  // namespace tg
