// Max pooling kernels that keep each window's argmax for the backward (PyTorch's rule: the first maximum wins
// ties, NaN propagates), and the plain reference they are tested against.
#include "core/kernels/max_pool2d.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/runtime/threads.hpp"

namespace tg {
namespace {

// Planes (one channel of one image) per thread below which a pooling loop stays on one thread: waking a
// worker costs tens of microseconds (core/runtime/threads.cpp), more than pooling a few small planes.
constexpr std::size_t kPlaneGrain = 16;

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

void max_pool2d_argmax_forward(const float* x, const Pool2dGeometry& g, float* out, std::int32_t* argmax) {
  if (g.pad_h == 0 && g.pad_w == 0) {
    auto kernel = max_pool2d_forward_unpadded<0, 0>;
    if (g.kh == 2 && g.kw == 2) kernel = max_pool2d_forward_unpadded<2, 2>;
    if (g.kh == 3 && g.kw == 3) kernel = max_pool2d_forward_unpadded<3, 3>;
    if (g.kh == 4 && g.kw == 4) kernel = max_pool2d_forward_unpadded<4, 4>;
    parallel_for(
        g.planes, [&](std::size_t p0, std::size_t p1) { kernel(x, g, out, argmax, p0, p1); }, kPlaneGrain);
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
        const std::size_t w1 =
            std::min(static_cast<std::size_t>(left + static_cast<std::ptrdiff_t>(g.kw)), g.w);
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

void max_pool2d_argmax_backward(const float* dout, const std::int32_t* argmax, const Pool2dGeometry& g,
                                float* dx) {
  const std::size_t out_plane = g.h_out * g.w_out, in_plane = g.h * g.w;
  parallel_for(
      g.planes,
      [&](std::size_t p0, std::size_t p1) {  // planes are disjoint
        std::fill(dx + p0 * in_plane, dx + p1 * in_plane, 0.f);
        for (std::size_t p = p0; p < p1; ++p) {
          float* d = dx + p * in_plane;
          for (std::size_t k = 0; k < out_plane; ++k) d[argmax[p * out_plane + k]] += dout[p * out_plane + k];
        }
      },
      kPlaneGrain);
}

// One window at a time over the padded input, with no special cases: cells outside the image are skipped
// (they are -inf); in window order, a cell greater than the maximum or NaN becomes the maximum (PyTorch's
// rule: the first maximum wins ties, the last NaN wins).
void max_pool2d_reference_forward(const float* x, const Pool2dGeometry& g, float* out, std::int32_t* argmax) {
  for (std::size_t p = 0; p < g.planes; ++p)
    for (std::size_t oh = 0; oh < g.h_out; ++oh)
      for (std::size_t ow = 0; ow < g.w_out; ++ow) {
        float best = -std::numeric_limits<float>::infinity();
        std::ptrdiff_t best_index = -1;
        for (std::size_t i = 0; i < g.kh; ++i)
          for (std::size_t j = 0; j < g.kw; ++j) {
            const std::ptrdiff_t index = g.cell(oh, ow, i, j);
            if (index < 0) continue;
            const float v = x[p * g.h * g.w + static_cast<std::size_t>(index)];
            if (best_index < 0 || v > best || std::isnan(v)) {  // so a later NaN replaces an earlier one
              best = v;
              best_index = index;
            }
          }
        out[(p * g.h_out + oh) * g.w_out + ow] = best;
        argmax[(p * g.h_out + oh) * g.w_out + ow] = static_cast<std::int32_t>(best_index);
      }
}

void max_pool2d_reference_backward(const float* dout, const float* x, const Pool2dGeometry& g, float* dx) {
  const std::size_t out_size = g.planes * g.h_out * g.w_out;
  std::vector<float> out(out_size);
  std::vector<std::int32_t> argmax(out_size);
  max_pool2d_reference_forward(x, g, out.data(), argmax.data());
  std::fill(dx, dx + g.planes * g.h * g.w, 0.f);
  for (std::size_t k = 0; k < out_size; ++k) {
    const std::size_t p = k / (g.h_out * g.w_out);
    dx[p * g.h * g.w + static_cast<std::size_t>(argmax[k])] += dout[k];
  }
}

}  // namespace tg
