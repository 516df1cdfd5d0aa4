// int8 linear layers (conv2d_int8.hpp, LinearInt8Weights). The lanes run over output features: the weights
// are packed [ceil(in / 4)][out rounded up to 16] as words of four int8 weights (input features 4q..4q+3 of
// one output), each example's input is quantized to bytes (its words are four consecutive features), and
// a step of the tile broadcasts one input word per example against 16 outputs' weight words: vpdpbusd with
// the unsigned input first and the signed weights second. A batch of one fills every lane, which a
// matrix-vector product needs; larger batches take up to 6 examples per tile. The same integer sums in plain
// C++ without VNNI (linear_tile_plain), and one epilogue order (fma, max, min) for both: the same bits.
#include <immintrin.h>
#include <algorithm>
#include <atomic>
#include <cmath>
#include <vector>

#include "core/base/error.hpp"
#include "core/kernels/conv2d_int8.hpp"
#include "core/kernels/int8_common.hpp"
#include "core/runtime/threads.hpp"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace tg {
namespace int8_linear {

constexpr std::size_t kLanes = 16, kRows = 6, kVecs = 4, kBlock = kLanes * kVecs;

// c[r][i] = sum over steps k of the four-byte dot of x[r * xstride + k] (u8) and w[k * wstride + i] (s8).
template <int MR, int NV>
struct linear_tile {
  TG_INT8 static void run(const std::uint32_t* x, std::size_t xstride, const std::int32_t* w,
                          std::size_t wstride, std::size_t steps, std::int32_t* c) {
    __m512i acc[MR][NV];
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_si512();
    for (std::size_t k = 0; k < steps; ++k) {
      __m512i wv[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v)
        wv[v] = _mm512_loadu_si512(w + k * wstride + kLanes * static_cast<std::size_t>(v));
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) {
        const __m512i b = _mm512_set1_epi32(static_cast<int>(x[static_cast<std::size_t>(r) * xstride + k]));
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_dpbusd_epi32(acc[r][v], b, wv[v]);
      }
    }
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v)
        _mm512_storeu_si512(c + static_cast<std::size_t>(r) * kBlock + kLanes * static_cast<std::size_t>(v),
                            acc[r][v]);
  }
};

void linear_tile_plain(int mr, int nv, const std::uint32_t* x, std::size_t xstride, const std::int32_t* w,
                       std::size_t wstride, std::size_t steps, std::int32_t* c) {
  const std::size_t width = kLanes * static_cast<std::size_t>(nv);
  for (int r = 0; r < mr; ++r) {
    std::int32_t* row = c + static_cast<std::size_t>(r) * kBlock;
    std::fill(row, row + width, 0);
    for (std::size_t k = 0; k < steps; ++k) {
      const std::uint32_t xv = x[static_cast<std::size_t>(r) * xstride + k];
      for (std::size_t i = 0; i < width; ++i) {
        const auto wv = static_cast<std::uint32_t>(w[k * wstride + i]);
        std::int32_t dot = 0;
        for (int b = 0; b < 4; ++b)
          dot += static_cast<int>((xv >> (8 * b)) & 0xffu) *
                 static_cast<int>(static_cast<std::int8_t>((wv >> (8 * b)) & 0xffu));
        row[i] += dot;
      }
    }
  }
}

// dst[i] = act(fma(float(acc[i] - corr[i]), scale[i], bias[i])) for i < n: per-output values, in the order
// of conv2d_int8.cpp's epilogue.
void store_plain(const std::int32_t* acc, std::size_t n, const std::int32_t* corr, const float* scale,
                 const float* bias, ConvActivation act, float* dst) {
  for (std::size_t i = 0; i < n; ++i) {
    float v = std::fma(static_cast<float>(acc[i] - corr[i]), scale[i], bias[i]);
    if (act != ConvActivation::None) v = v > 0.f ? v : 0.f;
    if (act == ConvActivation::ReLU6) v = v < 6.f ? v : 6.f;
    dst[i] = v;
  }
}

TG_INT8 void store_vnni(const std::int32_t* acc, std::size_t n, const std::int32_t* corr, const float* scale,
                        const float* bias, ConvActivation act, float* dst) {
  const __m512 zero = _mm512_setzero_ps(), six = _mm512_set1_ps(6.f);
  for (std::size_t i = 0; i < n; i += kLanes) {
    const __mmask16 m = static_cast<__mmask16>(n - i >= kLanes ? 0xffffu : (1u << (n - i)) - 1u);
    const __m512i a =
        _mm512_sub_epi32(_mm512_maskz_loadu_epi32(m, acc + i), _mm512_maskz_loadu_epi32(m, corr + i));
    __m512 v = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a), _mm512_maskz_loadu_ps(m, scale + i),
                               _mm512_maskz_loadu_ps(m, bias + i));
    if (act != ConvActivation::None) v = _mm512_max_ps(v, zero);
    if (act == ConvActivation::ReLU6) v = _mm512_min_ps(v, six);
    _mm512_mask_storeu_ps(dst + i, m, v);
  }
}

}  // namespace int8_linear

LinearInt8Weights pack_linear_int8(const std::int8_t* q, const float* scale, std::size_t out,
                                   std::size_t in) {
  using namespace int8_linear;
  LinearInt8Weights w;
  w.in = in, w.out = out, w.quads = (in + 3) / 4, w.out_padded = (out + kLanes - 1) / kLanes * kLanes;
  w.words.assign(w.quads * w.out_padded, 0);
  w.sums.assign(out, 0);
  w.scale.assign(scale, scale + out);
  for (std::size_t o = 0; o < out; ++o)
    for (std::size_t k = 0; k < in; ++k) {
      const std::int8_t v = q[o * in + k];
      auto& word = w.words[(k / 4) * w.out_padded + o];
      word = static_cast<std::int32_t>(
          static_cast<std::uint32_t>(word) |
          (static_cast<std::uint32_t>(static_cast<std::uint8_t>(v)) << (8 * (k % 4))));
      w.sums[o] += v;
    }
  return w;
}

LinearInt8Weights pack_linear_int8(const float* weight, std::size_t out, std::size_t in) {
  std::vector<std::int8_t> q(out * in);
  std::vector<float> scale(out);
  int8_common::quantize_weight_rows(weight, out, in, q.data(), scale.data());
  return pack_linear_int8(q.data(), scale.data(), out, in);
}

std::size_t linear_int8_forward(const float* x, std::size_t batch, const LinearInt8Weights& w, Int8Quant in,
                                const float* bias, ConvActivation act, float* out) {
  using namespace int8_linear;
  if (!(in.scale > 0.f) || !std::isfinite(in.scale) || in.zero_point < 0 || in.zero_point > 255)
    fail("linear_int8: the input's scale must be positive and finite and its zero point in [0, 255], got ",
         in.scale, " and ", in.zero_point);
  if (w.words.size() != w.quads * w.out_padded || w.sums.size() != w.out || w.scale.size() != w.out)
    fail("linear_int8: the packed weights are inconsistent (", w.out, " outputs, ", w.in, " inputs)");
  const bool vnni = int8_vnni_supported();
  // The per-output constants of the epilogue, padded to whole vectors.
  std::vector<std::int32_t> corr(w.out_padded, 0);
  std::vector<float> scale(w.out_padded, 0.f), shift(w.out_padded, 0.f);
  for (std::size_t o = 0; o < w.out; ++o) {
    corr[o] = in.zero_point * w.sums[o];
    scale[o] = in.scale * w.scale[o];
    shift[o] = bias ? bias[o] : 0.f;
  }
  // Each example's input as words (bytes past `in`: the zero point; their weights are 0).
  std::vector<std::uint32_t> xq(batch * w.quads, static_cast<std::uint32_t>(in.zero_point) * 0x01010101u);
  const float inv = 1.f / in.scale;
  std::atomic<std::size_t> clipped{0};
  parallel_for(
      batch,
      [&](std::size_t n0, std::size_t n1) {
        std::size_t mine = 0;
        for (std::size_t n = n0; n < n1; ++n) {
          auto* dst = reinterpret_cast<std::uint8_t*>(xq.data() + n * w.quads);
          mine += int8_common::quantize_bytes(x + n * w.in, w.in, inv, in.zero_point, dst, vnni);
        }
        clipped += mine;
      },
      64);
  const std::size_t row_blocks = (batch + kRows - 1) / kRows,
                    col_blocks = (w.out_padded + kBlock - 1) / kBlock;
  // At least ~100,000 cycles of tiles per thread (a tile is about one cycle per step, row and vector).
  const std::size_t grain =
      std::max<std::size_t>(1, 100000 / std::max<std::size_t>(w.quads * kRows * kVecs, 1));
  parallel_for(
      row_blocks * col_blocks,
      [&](std::size_t b0, std::size_t b1) {
        alignas(64) std::int32_t c[kRows * kBlock];
        for (std::size_t b = b0; b < b1; ++b) {
          const std::size_t n0 = (b / col_blocks) * kRows, o0 = (b % col_blocks) * kBlock;
          const int mr = static_cast<int>(std::min(kRows, batch - n0));
          const std::size_t width = std::min(kBlock, w.out_padded - o0);
          const int nv = static_cast<int>(width / kLanes);
          const std::uint32_t* xs = xq.data() + n0 * w.quads;
          const std::int32_t* ws = w.words.data() + o0;
          if (vnni) {
            int8_common::dispatch_tile<linear_tile>(mr, nv, xs, w.quads, ws, w.out_padded, w.quads, c);
          } else {
            linear_tile_plain(mr, nv, xs, w.quads, ws, w.out_padded, w.quads, c);
          }
          const std::size_t valid = std::min(width, w.out - std::min(w.out, o0));
          for (int r = 0; r < mr; ++r) {
            const std::int32_t* acc = c + static_cast<std::size_t>(r) * kBlock;
            float* dst = out + (n0 + static_cast<std::size_t>(r)) * w.out + o0;
            if (vnni) {
              store_vnni(acc, valid, corr.data() + o0, scale.data() + o0, shift.data() + o0, act, dst);
            } else {
              store_plain(acc, valid, corr.data() + o0, scale.data() + o0, shift.data() + o0, act, dst);
            }
          }
        }
      },
      grain);
  return clipped.load();
}

}  // namespace tg
