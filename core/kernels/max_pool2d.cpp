// Max pooling kernels that keep each window's argmax for the backward (PyTorch's rule: the first maximum wins
// ties, NaN propagates), and the plain reference they are tested against.
#include "core/kernels/max_pool2d.hpp"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

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
void max_pool2d_argmax_forward_unpadded(const float* x, const Pool2dGeometry& g, float* out,
                                        std::int32_t* argmax, std::size_t p0, std::size_t p1) {
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

// 2x2 windows at stride 2 (every model's pooling): one output row from two input rows. Each row's pair is
// reduced first, then the bottom pair against the top: the first maximum in scan order (0,0) (0,1) (1,0)
// (1,1) still wins ties, since the top row comes first, and the last NaN still wins. With AVX-512, 16 windows
// per step: two loads per input row split into even and odd columns by a permute (the compiler would use
// gathers for the stride-2 loads, ten times slower on this CPU); the scalar loop does the rest of the row.
struct Window2x2 {
  float value;
  std::int32_t index;
};

inline Window2x2 pool_2x2(const float* r0, const float* r1, std::int32_t index0, std::int32_t w) {
  const float v00 = r0[0], v01 = r0[1], v10 = r1[0], v11 = r1[1];
  const bool right0 = (v01 > v00) | (v01 != v01), right1 = (v11 > v10) | (v11 != v11);
  const float top = right0 ? v01 : v00, bottom = right1 ? v11 : v10;
  const bool take_bottom = (bottom > top) | (bottom != bottom);
  return take_bottom ? Window2x2{bottom, index0 + w + right1} : Window2x2{top, index0 + right0};
}

#if defined(__AVX512F__)
// One AVX-512 step over n <= 16 windows of a 2x2 stride-2 row: the lanes of the n windows, and of their 2n
// cells in each input row, split into cells 0-15 and 16-31 (two vectors, split into even and odd columns by
// a permute with even_cells()).
struct Step2x2 {
  __mmask16 windows, lo, hi;
};
inline Step2x2 step_2x2(std::size_t n) {
  return {static_cast<__mmask16>((1u << n) - 1),
          n >= 8 ? __mmask16{0xFFFF} : static_cast<__mmask16>((1u << (2 * n)) - 1),
          n <= 8 ? __mmask16{0} : static_cast<__mmask16>((1u << (2 * n - 16)) - 1)};
}
inline __m512i even_cells() {
  return _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
}
#endif

void max_pool2d_argmax_forward_2x2s2(const float* x, const Pool2dGeometry& g, float* out,
                                     std::int32_t* argmax, std::size_t p0, std::size_t p1) {
  const std::size_t w = g.w, wo = g.w_out;
  const auto w32 = static_cast<std::int32_t>(w);
  for (std::size_t p = p0; p < p1; ++p) {
    for (std::size_t oh = 0; oh < g.h_out; ++oh) {
      const float* r0 = x + p * g.h * w + 2 * oh * w;  // the windows' top row [w]
      const float* r1 = r0 + w;                        // and bottom row [w]
      float* o = out + (p * g.h_out + oh) * wo;        // [w_out]
      std::int32_t* a = argmax + (p * g.h_out + oh) * wo;
      const auto row0 = static_cast<std::int32_t>(2 * oh * w);
      std::size_t ow = 0;
#if defined(__AVX512F__)
      const __m512i even = even_cells();
      const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
      const __m512i one = _mm512_set1_epi32(1), row_step = _mm512_set1_epi32(w32);
      for (; ow < wo; ow += 16) {  // the last step masked: rows of 12 windows (convnet) take one step
        const auto [out_mask, lo, hi] = step_2x2(std::min<std::size_t>(16, wo - ow));
        const __m512 t0 = _mm512_maskz_loadu_ps(lo, r0 + 2 * ow),
                     t1 = _mm512_maskz_loadu_ps(hi, r0 + 2 * ow + 16);
        const __m512 b0 = _mm512_maskz_loadu_ps(lo, r1 + 2 * ow),
                     b1 = _mm512_maskz_loadu_ps(hi, r1 + 2 * ow + 16);
        const __m512 v00 = _mm512_permutex2var_ps(t0, even, t1), v01 = _mm512_permutex2var_ps(t0, odd, t1);
        const __m512 v10 = _mm512_permutex2var_ps(b0, even, b1), v11 = _mm512_permutex2var_ps(b0, odd, b1);
        const __mmask16 right0 =
            _mm512_cmp_ps_mask(v01, v00, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v01, v01, _CMP_UNORD_Q);
        const __mmask16 right1 =
            _mm512_cmp_ps_mask(v11, v10, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v11, v11, _CMP_UNORD_Q);
        const __m512 top = _mm512_mask_blend_ps(right0, v00, v01),
                     bottom = _mm512_mask_blend_ps(right1, v10, v11);
        const __mmask16 take_bottom =
            _mm512_cmp_ps_mask(bottom, top, _CMP_GT_OQ) | _mm512_cmp_ps_mask(bottom, bottom, _CMP_UNORD_Q);
        // the windows' top-left cells: row0 + 2 * (ow + lane)
        const __m512i corner =
            _mm512_add_epi32(_mm512_set1_epi32(row0 + static_cast<std::int32_t>(2 * ow)), even);
        const __m512i top_index = _mm512_mask_add_epi32(corner, right0, corner, one);
        const __m512i bottom_corner = _mm512_add_epi32(corner, row_step);
        const __m512i bottom_index = _mm512_mask_add_epi32(bottom_corner, right1, bottom_corner, one);
        _mm512_mask_storeu_ps(o + ow, out_mask, _mm512_mask_blend_ps(take_bottom, top, bottom));
        _mm512_mask_storeu_epi32(a + ow, out_mask,
                                 _mm512_mask_blend_epi32(take_bottom, top_index, bottom_index));
      }
#endif
      for (; ow < wo; ++ow) {  // without AVX-512
        const Window2x2 best =
            pool_2x2(r0 + 2 * ow, r1 + 2 * ow, row0 + static_cast<std::int32_t>(2 * ow), w32);
        o[ow] = best.value;
        a[ow] = best.index;
      }
    }
  }
}

}  // namespace

void max_pool2d_argmax_forward(const float* x, const Pool2dGeometry& g, float* out, std::int32_t* argmax) {
  if (g.pad_h == 0 && g.pad_w == 0) {
    auto kernel = max_pool2d_argmax_forward_unpadded<0, 0>;
    if (g.kh == 2 && g.kw == 2) kernel = max_pool2d_argmax_forward_unpadded<2, 2>;
    if (g.kh == 2 && g.kw == 2 && g.stride_h == 2 && g.stride_w == 2)
      kernel = max_pool2d_argmax_forward_2x2s2;
    if (g.kh == 3 && g.kw == 3) kernel = max_pool2d_argmax_forward_unpadded<3, 3>;
    if (g.kh == 4 && g.kw == 4) kernel = max_pool2d_argmax_forward_unpadded<4, 4>;
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
  if (g.kh == 2 && g.kw == 2 && g.stride_h == 2 && g.stride_w == 2 && g.pad_h == 0 && g.pad_w == 0) {
    // Windows that tile the plane: each cell gets its window's dout or 0, written once (no fill, then
    // scatter).
    parallel_for(
        g.planes,
        [&](std::size_t p0, std::size_t p1) {
          for (std::size_t p = p0; p < p1; ++p) {
            float* d = dx + p * in_plane;
            for (std::size_t oh = 0; oh < g.h_out; ++oh) {
              const std::size_t k0 = p * out_plane + oh * g.w_out;
              float* d0 = d + 2 * oh * g.w;
              float* d1 = d0 + g.w;
              const auto row0 = static_cast<std::int32_t>(2 * oh * g.w);
              const auto row1 = static_cast<std::int32_t>(row0 + g.w);
              std::size_t ow = 0;
#if defined(__AVX512F__)
              // 16 windows per step, as in the forward: 4 masks "is this cell the argmax", then the even and
              // odd columns interleaved back into each row by a permute.
              const __m512i even = even_cells();
              const __m512i one = _mm512_set1_epi32(1),
                            row_step = _mm512_set1_epi32(static_cast<std::int32_t>(g.w));
              const __m512i first = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
              const __m512i second = _mm512_add_epi32(first, _mm512_set1_epi32(8));
              for (; ow < g.w_out; ow += 16) {
                const auto [in_mask, lo, hi] = step_2x2(std::min<std::size_t>(16, g.w_out - ow));
                const __m512 v = _mm512_maskz_loadu_ps(in_mask, dout + k0 + ow);
                const __m512i at = _mm512_maskz_loadu_epi32(in_mask, argmax + k0 + ow);
                const __m512i c00 =
                    _mm512_add_epi32(_mm512_set1_epi32(row0 + static_cast<std::int32_t>(2 * ow)), even);
                const __m512i c10 = _mm512_add_epi32(c00, row_step);
                const __m512 d00 = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(at, c00), v);
                const __m512 d01 =
                    _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(at, _mm512_add_epi32(c00, one)), v);
                const __m512 d10 = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(at, c10), v);
                const __m512 d11 =
                    _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(at, _mm512_add_epi32(c10, one)), v);
                _mm512_mask_storeu_ps(d0 + 2 * ow, lo, _mm512_permutex2var_ps(d00, first, d01));
                _mm512_mask_storeu_ps(d0 + 2 * ow + 16, hi, _mm512_permutex2var_ps(d00, second, d01));
                _mm512_mask_storeu_ps(d1 + 2 * ow, lo, _mm512_permutex2var_ps(d10, first, d11));
                _mm512_mask_storeu_ps(d1 + 2 * ow + 16, hi, _mm512_permutex2var_ps(d10, second, d11));
              }
#endif
              for (; ow < g.w_out; ++ow) {  // without AVX-512
                const std::int32_t at = argmax[k0 + ow], column = static_cast<std::int32_t>(2 * ow);
                const float v = dout[k0 + ow];
                d0[2 * ow] = at == row0 + column ? v : 0.f;
                d0[2 * ow + 1] = at == row0 + column + 1 ? v : 0.f;
                d1[2 * ow] = at == row1 + column ? v : 0.f;
                d1[2 * ow + 1] = at == row1 + column + 1 ? v : 0.f;
              }
              if (g.w % 2) d0[g.w - 1] = d1[g.w - 1] = 0.f;  // the column no window covers
            }
            if (g.h % 2) std::fill(d + (g.h - 1) * g.w, d + in_plane, 0.f);  // and the row
          }
        },
        kPlaneGrain);
    return;
  }
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
