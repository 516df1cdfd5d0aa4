// The int8 depthwise conv (conv2d_int8.hpp) with AVX512_VBMI: each channel plane quantized to bytes, and the
// four taps a vpdpbusd lane sums are four neighbours along a kernel row. Lane i of 16 consecutive outputs
// needs the bytes at s*i + d*b (b = 0..3; stride s, dilation d) of its row: one 64-byte load and one vpermb
// (a byte permutation) make the 16 words, and one vpdpbusd against the broadcast word of the row's taps
// (zero past the kernel's width) adds them. A 3x3 depthwise conv is 3 vpdpbusd per 16 outputs where the
// general path spends 9 on one useful byte in four. The same integer sums as the general path, so the same
// bits; conv2d_int8_forward picks this one where it applies. Break in it with `rbreak int8_depthwise_row`.
// Its quantization and epilogue are written out here rather than calling int8_common's quantize_bytes and
// store_run: a depthwise plane's rows are short (4 to 32 values in mobilenetv2), and a call per row made
// mobilenetv2's batch-1 int8 forward 17% slower (610 against 510 us, one thread).
#include <immintrin.h>
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/kernels/conv2d_int8.hpp"
#include "core/runtime/threads.hpp"

#define TG_VBMI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi")))
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace tg {
namespace int8_depthwise {

constexpr std::size_t kLanes = 16;
constexpr std::size_t kSlack = 128;  // bytes past a plane that a row's 64-byte loads may read

bool cpu_has_vbmi() {
  static const bool has = __builtin_cpu_supports("avx512vbmi");
  return has;
}

// One channel: its quantized plane [Hp][Wp] (zero-point padded), its taps as words [kh][quads], its epilogue.
struct Channel {
  const std::uint8_t* plane;
  const std::int32_t* taps;
  std::int32_t correction;
  float scale, bias;
  const float* residual;  // the channel's output plane of the residual, or null
  float* out;             // the channel's output plane
};

// Quantizes x [H, W] into plane (already filled with the zero point); returns the values clipped.
TG_VBMI std::size_t quantize_plane(const float* x, const Conv2dGeometry& g, std::size_t wp, float inv, int zp,
                                   std::uint8_t* plane) {
  const __m512 vinv = _mm512_set1_ps(inv);
  const __m512 lo = _mm512_set1_ps(static_cast<float>(-zp)),
               hi = _mm512_set1_ps(static_cast<float>(255 - zp));
  const __m512 lo_clip = _mm512_set1_ps(static_cast<float>(-zp) - 0.5f);
  const __m512 hi_clip = _mm512_set1_ps(static_cast<float>(255 - zp) + 0.5f);
  const __m512i vzp = _mm512_set1_epi32(zp);
  std::size_t clipped = 0;
  for (std::size_t y = 0; y < g.h; ++y) {
    const float* src = x + y * g.w;
    std::uint8_t* dst = plane + (y + g.pad_top) * wp + g.pad_left;
    for (std::size_t i = 0; i < g.w; i += kLanes) {
      const std::size_t n = std::min(kLanes, g.w - i);
      const __mmask16 m = static_cast<__mmask16>((1u << n) - 1u);
      const __m512 t = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, src + i), vinv);
      clipped +=
          static_cast<std::size_t>(__builtin_popcount(_mm512_mask_cmp_ps_mask(m, t, lo_clip, _CMP_LT_OQ) |
                                                      _mm512_mask_cmp_ps_mask(m, t, hi_clip, _CMP_GT_OQ)));
      const __m512 c = _mm512_min_ps(_mm512_max_ps(t, lo), hi);  // as quantize_u8: NaN -> lo
      const __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(c), vzp);
      _mm_mask_storeu_epi8(dst + i, m, _mm512_cvtepi32_epi8(q));
    }
  }
  return clipped;
}

// One output row of one channel.
TG_VBMI void int8_depthwise_row(const Channel& ch, const Conv2dGeometry& g, std::size_t wp, std::size_t quads,
                                std::size_t oy, const __m512i& index, ConvActivation act) {
  const __m512 vs = _mm512_set1_ps(ch.scale), vb = _mm512_set1_ps(ch.bias);
  const __m512i corr = _mm512_set1_epi32(ch.correction);
  const __m512 zero = _mm512_setzero_ps(), six = _mm512_set1_ps(6.f);
  for (std::size_t ox = 0; ox < g.w_out; ox += kLanes) {
    __m512i acc = _mm512_setzero_si512();
    for (std::size_t ky = 0; ky < g.kh; ++ky) {
      const std::uint8_t* row = ch.plane + (oy * g.stride_h + ky * g.dilation_h) * wp + ox * g.stride_w;
      for (std::size_t j = 0; j < quads; ++j) {
        const __m512i bytes = _mm512_loadu_si512(row + 4 * j * g.dilation_w);
        const __m512i words = _mm512_permutexvar_epi8(index, bytes);
        acc = _mm512_dpbusd_epi32(acc, words, _mm512_set1_epi32(ch.taps[ky * quads + j]));
      }
    }
    const std::size_t n = std::min(kLanes, g.w_out - ox);
    const __mmask16 m = static_cast<__mmask16>((1u << n) - 1u);
    // As store_run_vnni and store_run_plain of conv2d_int8.cpp: fma, add, max, min.
    __m512 v = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc, corr)), vs, vb);
    if (ch.residual) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, ch.residual + oy * g.w_out + ox));
    if (act != ConvActivation::None) v = _mm512_max_ps(v, zero);
    if (act == ConvActivation::ReLU6) v = _mm512_min_ps(v, six);
    _mm512_mask_storeu_ps(ch.out + oy * g.w_out + ox, m, v);
  }
}

TG_VBMI std::size_t run(const float* x, const Conv2dInt8Weights& w, const Conv2dGeometry& g, Int8Quant in,
                        const Int8Epilogue& e, float* out) {
  const std::size_t hp = g.pad_top + g.h + g.pad_bottom, wp = g.pad_left + g.w + g.pad_right;
  const std::size_t quads = (g.kw + 3) / 4;
  // The taps of each channel, from the general packing: channel c's weight (ky, kx) is byte c % 4 of its
  // word at step (ky * kw + kx) * w.quads + (c / 4 - quad_base[c]).
  std::vector<std::int32_t> taps(g.c_out * g.kh * quads, 0);
  for (std::size_t c = 0; c < g.c_out; ++c)
    for (std::size_t ky = 0; ky < g.kh; ++ky)
      for (std::size_t kx = 0; kx < g.kw; ++kx) {
        const std::size_t step = (ky * g.kw + kx) * w.quads + (c / 4 - w.quad_base[c]);
        const auto word = static_cast<std::uint32_t>(w.words[c * w.steps + step]);
        const std::uint32_t byte = (word >> (8 * (c % 4))) & 0xffu;
        auto& t = taps[(c * g.kh + ky) * quads + kx / 4];
        t = static_cast<std::int32_t>(static_cast<std::uint32_t>(t) | (byte << (8 * (kx % 4))));
      }
  // Lane i, byte b: the input byte at s * i + d * b of the row (a tap past the kernel has weight 0).
  alignas(64) std::uint8_t idx[64];
  for (std::size_t i = 0; i < kLanes; ++i)
    for (std::size_t b = 0; b < 4; ++b)
      idx[4 * i + b] =
          static_cast<std::uint8_t>(std::min<std::size_t>(g.stride_w * i + g.dilation_w * b, 63));
  const __m512i index = _mm512_load_si512(idx);
  const float inv = 1.f / in.scale;
  const std::size_t plane_in = g.h * g.w, plane_out = g.h_out * g.w_out, planes = g.batch * g.c_in;
  std::atomic<std::size_t> clipped{0};
  // At least ~100,000 cycles per thread: a plane costs about its input pixels (quantizing and filling) plus
  // 4 cycles per 16 outputs per kernel row.
  const std::size_t cost = hp * wp + 4 * g.h_out * ((g.w_out + 15) / 16) * g.kh * quads;
  const std::size_t grain = std::max<std::size_t>(1, 100000 / std::max<std::size_t>(cost, 1));
  parallel_for(
      planes,
      [&](std::size_t p0, std::size_t p1) {
        std::vector<std::uint8_t> plane(hp * wp + kSlack);
        std::size_t mine = 0;
        for (std::size_t p = p0; p < p1; ++p) {
          const std::size_t c = p % g.c_in;
          std::fill(plane.begin(), plane.end(), static_cast<std::uint8_t>(in.zero_point));
          mine += quantize_plane(x + p * plane_in, g, wp, inv, in.zero_point, plane.data());
          const Channel ch{plane.data(),
                           taps.data() + c * g.kh * quads,
                           in.zero_point * w.sums[c],
                           in.scale * w.scale[c],
                           e.bias ? e.bias[c] : 0.f,
                           e.residual ? e.residual + p * plane_out : nullptr,
                           out + p * plane_out};
          for (std::size_t oy = 0; oy < g.h_out; ++oy) int8_depthwise_row(ch, g, wp, quads, oy, index, e.act);
        }
        clipped += mine;
      },
      grain);
  return clipped.load();
}

}  // namespace int8_depthwise

bool conv2d_int8_depthwise_applies(const Conv2dGeometry& g) {
  // A row's 16 outputs and 4 taps must lie in one 64-byte load.
  return g.groups == g.c_in && g.c_out == g.c_in && g.groups > 1 &&
         g.stride_w * (int8_depthwise::kLanes - 1) + g.dilation_w * 3 < 64 &&
         4 * ((g.kw + 3) / 4 - 1) * g.dilation_w + 64 <= int8_depthwise::kSlack && int8_vnni_supported() &&
         int8_depthwise::cpu_has_vbmi();
}

std::size_t conv2d_int8_depthwise_forward(const float* x, const Conv2dInt8Weights& w, const Conv2dGeometry& g,
                                          Int8Quant in, const Int8Epilogue& e, float* out) {
  return int8_depthwise::run(x, w, g, in, e, out);
}

}  // namespace tg
