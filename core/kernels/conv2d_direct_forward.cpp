// The direct convolution forward for stride-1 convs (the wide grid of conv2d_direct_common.hpp), and the
// "lanes" kernel that replaces it on narrow images.
#include <xsimd/xsimd.hpp>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <array>
#include <utility>
#include <vector>

#include "core/kernels/conv2d.hpp"
#include "core/kernels/conv2d_direct_common.hpp"
#include "core/kernels/conv2d_epilogue.hpp"
#include "core/kernels/conv2d_scratch.hpp"
#include "core/runtime/threads.hpp"

namespace tg {
namespace direct {
namespace {

// ---- the wide-grid kernels, stored (the forward): wide_block<OB, NB, false> for every block size ----
template <int OB, int... NB>
constexpr std::array<WideFn, kMaxNB> wide_row(std::integer_sequence<int, NB...>) {
  return {&wide_block<OB, std::min(NB + 1, max_nb(OB)), false>...};
}
template <int... OB>
constexpr std::array<std::array<WideFn, kMaxNB>, kMaxOB> wide_table(std::integer_sequence<int, OB...>) {
  return {wide_row<OB + 1>(std::make_integer_sequence<int, kMaxNB>())...};
}
constexpr auto kWideKernels = wide_table(std::make_integer_sequence<int, kMaxOB>());

// ---- narrow images: output channels in the vector lanes ----
// The wide grid wastes (Wp - Wout)/Wp of its work: 29% on lenet's 14x14 -> 10x10 conv. When Cout is a
// multiple of V, this kernel has no waste: acc[r][t] holds V output channels of pixel (oh + r, ow0 + t), and
// per patch element k it loads one weight vector Wt[k][o0 .. o0+V) and does R*PT FMAs with input pixels
// broadcast straight from memory (constant offsets from one base pointer per row). Results go pixel-major
// into pm [pixel][V]; a 16x16 register transpose then writes them channel-major with the bias
// (store_transposed).
template <int R, int PT>
void lanes_block(const float* xp, std::size_t wp, const std::size_t* off, std::size_t k_count,
                 const float* wt, std::size_t c_out, float* pm, std::size_t w_out) {
  Batch acc[R][PT];
#pragma GCC unroll 2
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 12
    for (int t = 0; t < PT; ++t) acc[r][t] = Batch(0.f);
  for (std::size_t k = 0; k < k_count; ++k) {
    const Batch w = Batch::load_unaligned(wt + k * c_out);
#pragma GCC unroll 2
    for (int r = 0; r < R; ++r) {
      const float* row = xp + off[k] + static_cast<std::size_t>(r) * wp;
#pragma GCC unroll 12
      for (int t = 0; t < PT; ++t) acc[r][t] = xsimd::fma(Batch(row[t]), w, acc[r][t]);
    }
  }
#pragma GCC unroll 2
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 12
    for (int t = 0; t < PT; ++t)
      acc[r][t].store_unaligned(pm + (static_cast<std::size_t>(r) * w_out + t) * V);
}

// A lanes block covers up to kLanesRows output rows x kLanesPT pixels of a row: 2 x 12 = 24 accumulators, the
// same register budget as the wide kernel's on AVX-512.
constexpr int kLanesRows = 2, kLanesPT = 12;
using LanesFn = void (*)(const float*, std::size_t, const std::size_t*, std::size_t, const float*,
                         std::size_t, float*, std::size_t);
template <int R, int... PT>
constexpr std::array<LanesFn, kLanesPT> lanes_row(std::integer_sequence<int, PT...>) {
  return {&lanes_block<R, PT + 1>...};
}
constexpr std::array<std::array<LanesFn, kLanesPT>, kLanesRows> kLanesKernels = {
    lanes_row<1>(std::make_integer_sequence<int, kLanesPT>()),
    lanes_row<2>(std::make_integer_sequence<int, kLanesPT>())};

// lanes_block<rows, pt> for 1 <= rows <= kLanesRows, 1 <= pt <= kLanesPT (`rbreak lanes_block` stops in all).
LanesFn lanes_kernel(std::size_t rows, std::size_t pt) { return kLanesKernels[rows - 1][pt - 1]; }

// store_transposed moves pixels in blocks of 16 (a 16x16 register transpose on AVX-512).
constexpr std::size_t kTransposeRows = 16;

// out[o * out_stride + p] = the epilogue of pm[p * V + o] + bias[o] for the V channels o0 .. o0+V of a block
// and p in [0, pixels); pm has pixels rounded up to kTransposeRows rows (the extra rows are read, never
// stored).
void store_transposed(const float* pm, std::size_t pixels, const float* bias, std::size_t o0,
                      const ConvEpilogue& e, float* out, std::size_t out_stride) {
#if defined(__AVX512F__)
  if constexpr (V == 16) {
    const __m512 zero = _mm512_setzero_ps(), six = _mm512_set1_ps(6.f);
    for (std::size_t p0 = 0; p0 < pixels; p0 += 16) {
      __m512 r[16];
      for (std::size_t i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(pm + (p0 + i) * 16);
      simd::transpose16(r);
      const auto mask = static_cast<__mmask16>((1u << std::min<std::size_t>(16, pixels - p0)) - 1u);
      for (std::size_t o = 0; o < 16; ++o) {
        __m512 v = _mm512_add_ps(r[o], _mm512_set1_ps(bias ? bias[o0 + o] : 0.f));
        if (e.scale) {  // (v - mean) * scale + shift, as the scalar epilogue
          v = _mm512_mul_ps(_mm512_sub_ps(v, _mm512_set1_ps(e.mean[o0 + o])),
                            _mm512_set1_ps(e.scale[o0 + o]));
          v = _mm512_add_ps(v, _mm512_set1_ps(e.shift[o0 + o]));
        }
        if (e.residual) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, e.residual + o * out_stride + p0));
        if (e.act == ConvActivation::ReLU) {
          v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ), v);  // NaN -> 0, as relu
        } else if (e.act == ConvActivation::ReLU6) {
          v = _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ), zero);
          v = _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, six, _CMP_GT_OQ), six);
        }
        _mm512_mask_storeu_ps(out + o * out_stride + p0, mask, v);
      }
    }
    return;
  }
#endif
  const EpilogueRowFn row = conv2d_epilogue_row_fn(e);
  std::vector<float> column(pixels);
  for (std::size_t o = 0; o < V; ++o) {
    for (std::size_t p = 0; p < pixels; ++p) column[p] = pm[p * V + o];
    row(column.data(), pixels, 1, pixels, bias ? bias[o0 + o] : 0.f, o0 + o, e,
        e.residual ? e.residual + o * out_stride : nullptr, out + o * out_stride, pixels);
  }
}

// wt [K][Cout] = weight [Cout][K] transposed, in 16x16 tiles on AVX-512: element by element, every store went
// to another cache line, and at batch 1 this copy took longer than the convolution (cifarnet's last conv:
// 128 x 576 weights for 8x8 pixels).
void transpose_weights(const float* weight, std::size_t c_out, std::size_t k_count, float* wt) {
  std::size_t k0 = 0;
#if defined(__AVX512F__)
  if constexpr (V == 16) {
    for (; k0 + 16 <= k_count; k0 += 16) {
      for (std::size_t o0 = 0; o0 + 16 <= c_out; o0 += 16) {  // c_out is a multiple of V here (use_lanes)
        __m512 r[16];
        for (std::size_t i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(weight + (o0 + i) * k_count + k0);
        simd::transpose16(r);
        for (std::size_t i = 0; i < 16; ++i) _mm512_storeu_ps(wt + (k0 + i) * c_out + o0, r[i]);
      }
    }
  }
#endif
  for (std::size_t k = k0; k < k_count; ++k)
    for (std::size_t o = 0; o < c_out; ++o) wt[k * c_out + o] = weight[o * k_count + k];
}

// The lanes kernel pays for broadcasts and a transpose; it wins once the wide grid wastes more than
// 1/kWideWasteLimit of its columns.
constexpr std::size_t kWideWasteLimit = 8;

// Whether the lanes kernel does less work than the wide grid: Cout fills whole vectors and the grid wastes
// more than an eighth of its columns.
bool use_lanes(const Conv2dGeometry& g, std::size_t wp) {
  return g.c_out % V == 0 && kWideWasteLimit * (wp - g.w_out) > wp;
}

// Fewer images than threads (batch-1 inference, predict): each image's output channels are split over the
// threads instead, in blocks of `unit` channels; otherwise the images are.
bool split_channels(const Conv2dGeometry& g, std::size_t unit) {
  const auto threads = static_cast<std::size_t>(num_threads());
  return g.batch < threads && g.c_out >= 2 * unit && worth_splitting_images(g, threads);
}

// Narrow images: output channels [o0, o1) of one image (o0, o1 multiples of V) from its padded input xp, one
// block of V channels at a time: pixel-major results, then transposed into the output.
void lanes_image(const float* xp, const Conv2dGeometry& g, const Plan& plan, const float* wt,
                 const float* bias, const ConvEpilogue& e, std::size_t o0, std::size_t o1, float* out) {
  const std::size_t hw = g.pixels_out(), rows16 = round_up(hw, kTransposeRows);
  float* pm = conv_scratch(kWide, rows16 * V);
  zero_row(pm + hw * V, (rows16 - hw) * V);
  for (std::size_t ob = o0; ob < o1; ob += V) {
    for (std::size_t oh = 0; oh < g.h_out; oh += kLanesRows) {
      const std::size_t rows = std::min<std::size_t>(kLanesRows, g.h_out - oh);
      for (std::size_t ow = 0; ow < g.w_out; ow += kLanesPT) {
        const std::size_t pt = std::min<std::size_t>(kLanesPT, g.w_out - ow);
        lanes_kernel(rows, pt)(xp + oh * plan.in.wp + ow, plan.in.wp, plan.off.data(), g.patch(), wt + ob,
                               g.c_out, pm + (oh * g.w_out + ow) * V, g.w_out);
      }
    }
    store_transposed(pm, hw, bias, ob, e.at(ob * hw), out + ob * hw, hw);
  }
}

void forward_lanes(const float* x, const float* weight, const float* bias, const Conv2dGeometry& g,
                   const ConvEpilogue& e, const Plan& plan, float* out) {
  const std::size_t k_count = g.patch(), in_size = g.c_in * g.h * g.w, out_size = g.c_out * g.pixels_out();
  std::vector<float> wt(k_count * g.c_out);  // [K][Cout]
  transpose_weights(weight, g.c_out, k_count, wt.data());
  if (split_channels(g, V)) {
    float* xp = conv_scratch(kPadded, plan.in.size);
    for (std::size_t n = 0; n < g.batch; ++n) {
      plan.in.fill(x + n * in_size, g.h, g.w, g.pad_top, g.pad_left, xp);
      parallel_for(g.c_out / V, [&](std::size_t b0, std::size_t b1) {
        lanes_image(xp, g, plan, wt.data(), bias, e.at(n * out_size), b0 * V, b1 * V, out + n * out_size);
      });
    }
    return;
  }
  parallel_for(g.batch, [&](std::size_t n0, std::size_t n1) {
    float* xp = conv_scratch(kPadded, plan.in.size);
    for (std::size_t n = n0; n < n1; ++n) {
      plan.in.fill(x + n * in_size, g.h, g.w, g.pad_top, g.pad_left, xp);
      lanes_image(xp, g, plan, wt.data(), bias, e.at(n * out_size), 0, g.c_out, out + n * out_size);
    }
  });
}

// The wide grid: output channels [o0, o1) of one image (o0 a multiple of kMaxOB): wide [o1 - o0][width] =
// W[o0:o1] xp, then the valid columns copied out with the bias and the epilogue; output planes are
// `out_plane` floats apart (the image's, or the whole output's when g is a band of its rows).
void wide_image(const float* xp, const Conv2dGeometry& g, const Plan& plan, const float* weight,
                const float* bias, const ConvEpilogue& e, std::size_t o0, std::size_t o1, float* out,
                std::size_t out_plane) {
  const std::size_t k_count = g.patch();
  float* wide = conv_scratch(kWide, (o1 - o0) * plan.width);
  wide_conv(xp, plan.off.data(), k_count, weight + o0 * k_count, o1 - o0, plan.width, wide);
  const EpilogueRowFn row = conv2d_epilogue_row_fn(e);
  for (std::size_t o = o0; o < o1; ++o) {
    const float b = bias ? bias[o] : 0.f;
    row(wide + (o - o0) * plan.width, plan.in.wp, g.h_out, g.w_out, b, o, e,
        e.residual ? e.residual + o * out_plane : nullptr, out + o * out_plane, g.w_out);
  }
}

// One image's output rows [r0, r1) as a conv of their own: the input rows they read (padding where they
// fall outside), the band's padded copy made by the thread that computes it, so that at batch 1 each thread
// reads and writes only its band (splitting channels instead made every thread read the whole padded input
// written by another core: slower than one thread on 16-channel 32x32 convs).
void wide_band(const float* x, const Conv2dGeometry& g, const float* weight, const float* bias,
               const ConvEpilogue& e, std::size_t r0, std::size_t r1, float* out) {
  const std::size_t span_h = g.dilation_h * (g.kh - 1) + 1;
  const auto lo = static_cast<std::ptrdiff_t>(r0) - static_cast<std::ptrdiff_t>(g.pad_top);  // first row
  const auto hi = static_cast<std::ptrdiff_t>(r1 - 1 + span_h) - static_cast<std::ptrdiff_t>(g.pad_top);
  const auto h = static_cast<std::ptrdiff_t>(g.h);
  const std::ptrdiff_t first = std::max<std::ptrdiff_t>(lo, 0), last = std::min<std::ptrdiff_t>(hi, h);
  Conv2dGeometry band = g;
  band.batch = 1;
  band.h_out = r1 - r0;
  band.pad_top = static_cast<std::size_t>(first - lo);
  band.pad_bottom = static_cast<std::size_t>(hi - last);
  band.h = static_cast<std::size_t>(std::max<std::ptrdiff_t>(last - first, 0));
  const Plan plan = forward_plan(band);
  float* xp = conv_scratch(kPadded, plan.in.size);
  plan.in.fill(x + static_cast<std::size_t>(first) * g.w, band.h, g.w, band.pad_top, g.pad_left, xp,
               g.h * g.w);
  wide_image(xp, band, plan, weight, bias, e.at(r0 * g.w_out), 0, g.c_out, out + r0 * g.w_out,
             g.pixels_out());
}

// Whether a batch smaller than the pool splits each image's output rows over the threads (rather than its
// channels): enough rows for every thread to get a few.
bool split_rows(const Conv2dGeometry& g) {
  const auto threads = static_cast<std::size_t>(num_threads());
  return g.batch < threads && g.h_out >= 4 * threads && worth_splitting_images(g, threads);
}

void forward_wide(const float* x, const float* weight, const float* bias, const Conv2dGeometry& g,
                  const ConvEpilogue& e, const Plan& plan, float* out) {
  const std::size_t in_size = g.c_in * g.h * g.w, out_size = g.c_out * g.pixels_out();
  if (split_rows(g)) {
    for (std::size_t n = 0; n < g.batch; ++n) {
      parallel_for(g.h_out, [&](std::size_t r0, std::size_t r1) {
        wide_band(x + n * in_size, g, weight, bias, e.at(n * out_size), r0, r1, out + n * out_size);
      });
    }
    return;
  }
  if (split_channels(g, kMaxOB)) {
    constexpr auto unit = static_cast<std::size_t>(kMaxOB);
    float* xp = conv_scratch(kPadded, plan.in.size);
    for (std::size_t n = 0; n < g.batch; ++n) {
      plan.in.fill(x + n * in_size, g.h, g.w, g.pad_top, g.pad_left, xp);
      parallel_for((g.c_out + unit - 1) / unit, [&](std::size_t b0, std::size_t b1) {
        wide_image(xp, g, plan, weight, bias, e.at(n * out_size), b0 * unit, std::min(b1 * unit, g.c_out),
                   out + n * out_size, g.pixels_out());
      });
    }
    return;
  }
  parallel_for(g.batch, [&](std::size_t n0, std::size_t n1) {
    float* xp = conv_scratch(kPadded, plan.in.size);
    for (std::size_t n = n0; n < n1; ++n) {
      plan.in.fill(x + n * in_size, g.h, g.w, g.pad_top, g.pad_left, xp);
      wide_image(xp, g, plan, weight, bias, e.at(n * out_size), 0, g.c_out, out + n * out_size,
                 g.pixels_out());
    }
  });
}

}  // namespace

// wide_block<ob, nb, false>: `rbreak wide_block` stops in every instantiation.
WideFn wide_kernel(int ob, int nb) {
  return kWideKernels[static_cast<std::size_t>(ob - 1)][static_cast<std::size_t>(nb - 1)];
}

}  // namespace direct

bool conv2d_direct_applies(const Conv2dGeometry& g) { return g.stride_h == 1 && g.stride_w == 1; }

// The lanes kernel where Cout fills whole vectors and the wide grid would waste much (narrow images), the
// wide grid otherwise.
void conv2d_direct_forward_fused(const float* x, const float* weight, const float* bias,
                                 const Conv2dGeometry& g, const ConvEpilogue& e, float* out) {
  const direct::Plan plan = direct::forward_plan(g);
  if (direct::use_lanes(g, plan.in.wp)) {
    direct::forward_lanes(x, weight, bias, g, e, plan, out);
  } else {
    direct::forward_wide(x, weight, bias, g, e, plan, out);
  }
}

void conv2d_direct_forward(const float* x, const float* weight, const float* bias, const Conv2dGeometry& g,
                           float* out) {
  conv2d_direct_forward_fused(x, weight, bias, g, ConvEpilogue{}, out);
}

}  // namespace tg
