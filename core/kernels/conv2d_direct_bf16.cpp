// Why one file: the three passes share the pair layouts, their conversions and the scratch, and
// the whole family compiles only where the compiler targets AVX512_BF16 (the #else at the end).
// The direct convolution for stride-1 convs in bf16 mixed precision: the wide grid of
// conv2d_direct_common.hpp with the inputs of each pass rounded to bfloat16 (round to nearest even, as
// vcvtneps2bf16: denormals to zero) and every product accumulated in float32 by vdpbf16ps (AVX512_BF16), 32
// multiply-adds per instruction against 16 for an fp32 FMA. Outputs and gradients are float32.
//
// vdpbf16ps multiplies PAIRS: lane i of acc += a[2i] * b[2i] + a[2i+1] * b[2i+1]. Each pass therefore lays
// its reduction dimension out in pairs:
//   forward: pairs of input channels. The padded input becomes uint32 [ceil(Cin/2)][Hp][Wp], each holding the
//            bf16 of channel 2c (low half) and of channel 2c+1 (high half) at one position, the weights
//            [Cout][ceil(Cin/2)][Kh][Kw] likewise; then wide_block is the fp32 one with half the patch
//            elements and vdpbf16ps for the FMA.
//   dx:      pairs of output channels: the wide gradient as uint32 pairs of rows, W^T likewise.
//   dweight: pairs of positions: plain bf16 copies of the padded input and the wide gradient, 32 positions
//            per instruction.
// An odd channel count gets a zero partner. Break in the kernels with `rbreak bf16_block`.
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#if defined(__AVX512BF16__) && defined(__AVX512BW__)
#include <immintrin.h>
#define TG_HAVE_BF16_KERNELS 1
#endif

#include "core/base/error.hpp"
#include "core/kernels/bf16.hpp"
#include "core/kernels/conv2d.hpp"
#include "core/kernels/conv2d_direct_common.hpp"
#include "core/kernels/conv2d_epilogue.hpp"
#include "core/kernels/conv2d_scratch.hpp"
#include "core/runtime/threads.hpp"

namespace tg {

std::uint16_t to_bf16(float f) {
  std::uint32_t u = 0;
  std::memcpy(&u, &f, sizeof u);
  if ((u & 0x7f800000u) == 0) return static_cast<std::uint16_t>((u >> 16) & 0x8000u);  // +-0, denormals
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((u >> 16) | 0x40u);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<std::uint16_t>(u >> 16);
}

float from_bf16(std::uint16_t h) {
  const std::uint32_t u = static_cast<std::uint32_t>(h) << 16;
  float f = 0.f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

#if defined(TG_HAVE_BF16_KERNELS)
namespace direct_bf16 {
using namespace direct;
namespace {

using bf16 = std::uint16_t;
using pair16 = std::uint32_t;  // two bf16: the first of the pair in the low half

// Scratch of the bf16 passes, per thread, by use (the fp32 kernels' conv_scratch holds floats).
enum Bf16Scratch { kPairsIn, kPairsDy, kPlainIn, kPlainDy, kNumBf16Scratch };
template <class T>
T* bf16_scratch(Bf16Scratch slot, std::size_t count) {
  thread_local std::vector<std::uint32_t> buffers[kNumBf16Scratch];
  std::vector<std::uint32_t>& b = buffers[slot];
  const std::size_t words = (count * sizeof(T) + 3) / 4 + 16;  // + 64 bytes: whole-vector reads at the end
  if (b.size() < words) b.resize(words);
  return reinterpret_cast<T*>(b.data());
}

template <class T>
void zero_words(T* dst, std::size_t n) {
  std::fill(dst, dst + n, T{0});
}

// Padded::fill in the pair layout: planes of channel pairs (2cp, 2cp+1) of the image src [C][h][w].
void fill_pairs(const Padded& in, const float* src, std::size_t channels, std::size_t h, std::size_t w,
                std::size_t top, std::size_t left, pair16* dst) {
  const std::size_t right = in.wp - left - w, plane = h * w;
  for (std::size_t cp = 0; cp < in.channels; ++cp) {
    pair16* p = dst + cp * in.hp * in.wp;
    const float* a = src + 2 * cp * plane;
    const float* b = 2 * cp + 1 < channels ? a + plane : nullptr;
    zero_words(p, top * in.wp);
    for (std::size_t y = 0; y < h; ++y) {
      pair16* row = p + (top + y) * in.wp;
      zero_words(row, left);
      bfloat16::to_pairs(a + y * w, b ? b + y * w : nullptr, w, row + left);
      zero_words(row + left + w, right);
    }
    zero_words(p + (top + h) * in.wp, (in.hp - top - h) * in.wp);
  }
  zero_words(dst + in.channels * in.hp * in.wp, in.size - in.channels * in.hp * in.wp);
}

// Padded::fill in plain bf16.
void fill_plain(const Padded& in, const float* src, std::size_t h, std::size_t w, std::size_t top,
                std::size_t left, bf16* dst) {
  const std::size_t right = in.wp - left - w;
  for (std::size_t c = 0; c < in.channels; ++c) {
    bf16* p = dst + c * in.hp * in.wp;
    zero_words(p, top * in.wp);
    for (std::size_t y = 0; y < h; ++y) {
      bf16* row = p + (top + y) * in.wp;
      zero_words(row, left);
      bfloat16::to_plain(src + (c * h + y) * w, w, row + left);
      zero_words(row + left + w, right);
    }
    zero_words(p + (top + h) * in.wp, (in.hp - top - h) * in.wp);
  }
  zero_words(dst + in.channels * in.hp * in.wp, in.size - in.channels * in.hp * in.wp);
}

// ---- the kernel: acc[o][p] = sum_kp W[o][kp] . in[off[kp] + p] over pairs, OB rows x NB vectors from p0.
// Store: out[o*out_stride + p] = acc, W [rows][K/2] read in place (w_stride pairs apart). Scatter:
// out[out_off[o] + p] += acc, W packed [K/2][OB].
template <int OB, int NB, bool Scatter>
void wide_bf16_block(const pair16* in, const std::size_t* off, std::size_t k_count, const pair16* wk,
                     std::size_t w_stride, float* out, std::size_t out_stride, const std::size_t* out_off,
                     std::size_t p0) {
  __m512 acc[OB][NB];
#pragma GCC unroll 8
  for (int o = 0; o < OB; ++o)
#pragma GCC unroll 4
    for (int v = 0; v < NB; ++v) acc[o][v] = _mm512_setzero_ps();
  for (std::size_t k = 0; k < k_count; ++k) {
    const pair16* src = in + off[k] + p0;
    __m512bh xv[NB];
#pragma GCC unroll 4
    for (int v = 0; v < NB; ++v) xv[v] = (__m512bh)_mm512_loadu_si512(src + v * 16);
#pragma GCC unroll 8
    for (int o = 0; o < OB; ++o) {
      const auto wb =
          (__m512bh)_mm512_set1_epi32(static_cast<int>(Scatter ? wk[k * OB + o] : wk[o * w_stride + k]));
#pragma GCC unroll 4
      for (int v = 0; v < NB; ++v) acc[o][v] = _mm512_dpbf16_ps(acc[o][v], wb, xv[v]);
    }
  }
#pragma GCC unroll 8
  for (int o = 0; o < OB; ++o) {
#pragma GCC unroll 4
    for (int v = 0; v < NB; ++v) {
      if constexpr (Scatter) {
        float* dst = out + out_off[o] + p0 + v * 16;
        _mm512_storeu_ps(dst, _mm512_add_ps(_mm512_loadu_ps(dst), acc[o][v]));
      } else {
        _mm512_storeu_ps(out + o * out_stride + p0 + v * 16, acc[o][v]);
      }
    }
  }
}

using WideBf16Fn = void (*)(const pair16*, const std::size_t*, std::size_t, const pair16*, std::size_t,
                            float*, std::size_t, const std::size_t*, std::size_t);
template <bool Scatter, int OB, int... NB>
constexpr std::array<WideBf16Fn, kMaxNB> bf16_row(std::integer_sequence<int, NB...>) {
  return {&wide_bf16_block<OB, std::min(NB + 1, max_nb(OB)), Scatter>...};
}
template <bool Scatter, int... OB>
constexpr std::array<std::array<WideBf16Fn, kMaxNB>, kMaxOB> bf16_table(std::integer_sequence<int, OB...>) {
  return {bf16_row<Scatter, OB + 1>(std::make_integer_sequence<int, kMaxNB>())...};
}
constexpr auto kWideBf16 = bf16_table<false>(std::make_integer_sequence<int, kMaxOB>());
constexpr auto kScatterBf16 = bf16_table<true>(std::make_integer_sequence<int, kMaxOB>());

// wide_conv of conv2d_direct_common.hpp on pairs: `pairs` = the reduction's length in pairs.
void wide_conv_bf16(const pair16* in, const std::size_t* off, std::size_t pairs, const pair16* w,
                    std::size_t rows, std::size_t width, float* wide, const std::size_t* out_off = nullptr) {
  for (std::size_t o0 = 0; o0 < rows; o0 += kMaxOB) {
    const int ob = static_cast<int>(std::min<std::size_t>(kMaxOB, rows - o0));
    const std::size_t step = static_cast<std::size_t>(max_nb(ob)) * 16;
    for (std::size_t p0 = 0; p0 < width; p0 += step) {
      const auto nb = static_cast<std::size_t>(std::min(step, width - p0) / 16);
      const WideBf16Fn kernel =
          (out_off ? kScatterBf16 : kWideBf16)[static_cast<std::size_t>(ob - 1)][nb - 1];
      kernel(in, off, pairs, w + o0 * pairs, pairs, out_off ? wide : wide + o0 * width, width,
             out_off ? out_off + o0 : nullptr, p0);
    }
  }
}

// Rows W [rows][count] (floats `stride` apart per row) as pairs along the row: [rows][ceil(count/2)].
std::vector<pair16> pair_rows(const float* w, std::size_t rows, std::size_t count) {
  const std::size_t half = (count + 1) / 2;
  std::vector<pair16> out(rows * half);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t i = 0; i < half; ++i) {
      const std::uint32_t lo = to_bf16(w[r * count + 2 * i]);
      const std::uint32_t hi = 2 * i + 1 < count ? to_bf16(w[r * count + 2 * i + 1]) : 0u;
      out[r * half + i] = lo | hi << 16;
    }
  return out;
}

// The forward's pair plan: offsets of (channel pair, i, j) in the pair layout.
Plan pair_plan(const Conv2dGeometry& g) {
  return make_plan((g.c_in + 1) / 2, g.h + g.pad_top + g.pad_bottom, g.w + g.pad_left + g.pad_right, g.kh,
                   g.kw, g.dilation_h, g.dilation_w, g.h_out);
}

// ---- dweight: acc[o][k] = sum over images and positions (in pairs) of dy[o][p] * xp[off_k + p] ----
template <int OB, int KB>
void dweight_bf16_block(const bf16* const* dy, const bf16* const* xp, std::size_t images, std::size_t width,
                        const std::size_t* off, std::size_t k_count, std::size_t o0, std::size_t k0,
                        float* dw) {
  __m512 acc[OB][KB];
#pragma GCC unroll 8
  for (int o = 0; o < OB; ++o)
#pragma GCC unroll 8
    for (int k = 0; k < KB; ++k) acc[o][k] = _mm512_setzero_ps();
  for (std::size_t n = 0; n < images; ++n) {
    const bf16* d = dy[n] + o0 * width;
    const bf16* x = xp[n];
    for (std::size_t p = 0; p < width; p += 32) {
      __m512bh dv[OB];
#pragma GCC unroll 8
      for (int o = 0; o < OB; ++o) dv[o] = (__m512bh)_mm512_loadu_si512(d + o * width + p);
#pragma GCC unroll 8
      for (int k = 0; k < KB; ++k) {
        const auto xk = (__m512bh)_mm512_loadu_si512(x + off[k0 + k] + p);
#pragma GCC unroll 8
        for (int o = 0; o < OB; ++o) acc[o][k] = _mm512_dpbf16_ps(acc[o][k], dv[o], xk);
      }
    }
  }
#pragma GCC unroll 8
  for (int o = 0; o < OB; ++o)
#pragma GCC unroll 8
    for (int k = 0; k < KB; ++k) dw[(o0 + o) * k_count + k0 + k] += xsimd::hadd(simd::Batch(acc[o][k]));
}

constexpr int kDwOB = 4, kDwKB = 6;
using DweightBf16Fn = void (*)(const bf16* const*, const bf16* const*, std::size_t, std::size_t,
                               const std::size_t*, std::size_t, std::size_t, std::size_t, float*);
template <int OB, int... KB>
constexpr std::array<DweightBf16Fn, kDwKB> dw_row(std::integer_sequence<int, KB...>) {
  return {&dweight_bf16_block<OB, KB + 1>...};
}
template <int... OB>
constexpr std::array<std::array<DweightBf16Fn, kDwKB>, kDwOB> dw_table(std::integer_sequence<int, OB...>) {
  return {dw_row<OB + 1>(std::make_integer_sequence<int, kDwKB>())...};
}
constexpr auto kDweightBf16 = dw_table(std::make_integer_sequence<int, kDwOB>());

// One image's forward: wide [Cout][width] from its pair-padded input, copied out with the bias.
void forward_image(const pair16* xp, const Conv2dGeometry& g, const Plan& plan, const pair16* w,
                   const float* bias, float* out) {
  const std::size_t pairs = plan.off.size();
  float* wide = conv_scratch(kWide, g.c_out * plan.width);
  wide_conv_bf16(xp, plan.off.data(), pairs, w, g.c_out, plan.width, wide);
  const ConvEpilogue none{};
  const EpilogueRowFn row = conv2d_epilogue_row_fn(none);
  for (std::size_t o = 0; o < g.c_out; ++o)
    row(wide + o * plan.width, plan.in.wp, g.h_out, g.w_out, bias ? bias[o] : 0.f, o, none, nullptr,
        out + o * g.pixels_out(), g.w_out);
}

// The dx pass's rows in (i, j, c) order (as the fp32 DxPlan: rows of one register block in different
// channels), W^T as pairs of output channels, packed [Cout/2][OB] per block of OB rows.
struct DxPairs {
  std::vector<pair16> packed;
  std::vector<std::size_t> dy_off, row_off;
};

DxPairs make_dx_pairs(const float* weight, const Conv2dGeometry& g, const Plan& fwd) {
  const std::size_t k_count = g.patch(), half = (g.c_out + 1) / 2;
  DxPairs d{{}, std::vector<std::size_t>(half), std::vector<std::size_t>(k_count)};
  std::vector<float> transposed(k_count * g.c_out);  // [row r][o]
  std::size_t r = 0;
  for (std::size_t ij = 0; ij < g.kh * g.kw; ++ij)
    for (std::size_t ch = 0; ch < g.c_in; ++ch, ++r) {
      const std::size_t k = ch * g.kh * g.kw + ij;
      d.row_off[r] = fwd.off[k];
      for (std::size_t o = 0; o < g.c_out; ++o) transposed[r * g.c_out + o] = weight[o * k_count + k];
    }
  const std::vector<pair16> rows = pair_rows(transposed.data(), k_count, g.c_out);  // [K][half]
  d.packed.resize(rows.size());
  for (std::size_t r0 = 0; r0 < k_count; r0 += kMaxOB) {
    const std::size_t ob = std::min<std::size_t>(kMaxOB, k_count - r0);
    pair16* block = d.packed.data() + r0 * half;
    for (std::size_t k = 0; k < half; ++k)
      for (std::size_t o = 0; o < ob; ++o) block[k * ob + o] = rows[(r0 + o) * half + k];
  }
  for (std::size_t op = 0; op < half; ++op) d.dy_off[op] = op * fwd.width;
  return d;
}

// One chunk of images [n0, n1) of the backward (as the fp32 backward_chunk).
void backward_chunk(const float* dout, const float* x, const Conv2dGeometry& g, const Plan& fwd,
                    const DxPairs& dxp_plan, std::size_t n0, std::size_t n1, float* dx, float* dweight_part,
                    double* dbias_part) {
  const std::size_t k_count = g.patch(), in_size = g.c_in * g.h * g.w, hw = g.pixels_out(),
                    out_size = g.c_out * hw, m = n1 - n0;
  if (dbias_part) {
    for (std::size_t n = n0; n < n1; ++n)
      for (std::size_t o = 0; o < g.c_out; ++o)
        dbias_part[o] += simd::sum_row(dout + n * out_size + o * hw, hw);
  }
  if (!dx && !dweight_part) return;
  // The wide gradient of each image in fp32, garbage columns zero (as the fp32 backward): only for the
  // scatter form of dx; dweight converts dout straight to bf16.
  float* dys = dx ? conv_scratch(kWide, m * g.c_out * fwd.width) : nullptr;
  for (std::size_t n = n0; dx && n < n1; ++n) {
    float* di = dys + (n - n0) * g.c_out * fwd.width;
    for (std::size_t o = 0; o < g.c_out; ++o) {
      float* row = di + o * fwd.width;
      for (std::size_t oh = 0; oh < g.h_out; ++oh, row += fwd.in.wp) {
        copy_row(dout + n * out_size + o * hw + oh * g.w_out, g.w_out, row);
        zero_row(row + g.w_out, fwd.in.wp - g.w_out);
      }
      zero_row(row, fwd.width - g.h_out * fwd.in.wp);
    }
  }
  if (dx) {
    const std::size_t half = (g.c_out + 1) / 2;
    pair16* dyp = bf16_scratch<pair16>(kPairsDy, half * fwd.width);
    float* dxp = conv_scratch(kOther, fwd.in.size);
    for (std::size_t n = n0; n < n1; ++n) {
      const float* di = dys + (n - n0) * g.c_out * fwd.width;
      for (std::size_t op = 0; op < half; ++op)
        bfloat16::to_pairs(di + 2 * op * fwd.width,
                           2 * op + 1 < g.c_out ? di + (2 * op + 1) * fwd.width : nullptr, fwd.width,
                           dyp + op * fwd.width);
      std::fill(dxp, dxp + fwd.in.size, 0.f);
      wide_conv_bf16(dyp, dxp_plan.dy_off.data(), half, dxp_plan.packed.data(), k_count, fwd.width, dxp,
                     dxp_plan.row_off.data());
      for (std::size_t ch = 0; ch < g.c_in; ++ch)
        for (std::size_t y = 0; y < g.h; ++y)
          copy_row(dxp + (ch * fwd.in.hp + y + g.pad_top) * fwd.in.wp + g.pad_left, g.w,
                   dx + n * in_size + (ch * g.h + y) * g.w);
    }
  }
  if (dweight_part) {
    const std::size_t width = simd::round_up(fwd.width, 32), x_size = fwd.in.size + 32;
    bf16* xs = bf16_scratch<bf16>(kPlainIn, m * x_size);
    bf16* ds = bf16_scratch<bf16>(kPlainDy, m * g.c_out * width);
    std::vector<const bf16*> xp(m), dy(m);
    for (std::size_t n = n0; n < n1; ++n) {
      bf16* xi = xs + (n - n0) * x_size;
      fill_plain(fwd.in, x + n * in_size, g.h, g.w, g.pad_top, g.pad_left, xi);
      zero_words(xi + fwd.in.size, x_size - fwd.in.size);
      bf16* di = ds + (n - n0) * g.c_out * width;
      for (std::size_t o = 0; o < g.c_out; ++o) {  // the wide layout, garbage columns and the tail zero
        bf16* row = di + o * width;
        for (std::size_t oh = 0; oh < g.h_out; ++oh, row += fwd.in.wp) {
          bfloat16::to_plain(dout + n * out_size + o * hw + oh * g.w_out, g.w_out, row);
          zero_words(row + g.w_out, fwd.in.wp - g.w_out);
        }
        zero_words(row, width - g.h_out * fwd.in.wp);
      }
      xp[n - n0] = xi, dy[n - n0] = di;
    }
    for (std::size_t o0 = 0; o0 < g.c_out; o0 += kDwOB) {
      const std::size_t ob = std::min<std::size_t>(kDwOB, g.c_out - o0);
      for (std::size_t k0 = 0; k0 < k_count; k0 += kDwKB) {
        const std::size_t kb = std::min<std::size_t>(kDwKB, k_count - k0);
        kDweightBf16[ob - 1][kb - 1](dy.data(), xp.data(), m, width, fwd.off.data(), k_count, o0, k0,
                                     dweight_part);
      }
    }
  }
}

constexpr std::size_t kBackwardChunkBytes = 512 * 1024;

// For stride 1, dx is the correlation of dout, padded by (span - 1 - pad) on each side, with the weights
// flipped in space and Cin and Cout swapped: a forward conv of its own.
bool dx_forward_applies(const Conv2dGeometry& g) {
  const std::size_t span_h = g.dilation_h * (g.kh - 1) + 1, span_w = g.dilation_w * (g.kw - 1) + 1;
  return g.pad_top < span_h && g.pad_bottom < span_h && g.pad_left < span_w && g.pad_right < span_w;
}

void dx_by_forward(const float* dout, const float* weight, const Conv2dGeometry& g, float* dx);

}  // namespace
}  // namespace direct_bf16

bool conv2d_direct_bf16_compiled() { return true; }

void conv2d_direct_bf16_forward(const float* x, const float* weight, const float* bias,
                                const Conv2dGeometry& g, float* out) {
  using namespace direct_bf16;
  const Plan plan = pair_plan(g);
  // Weights [Cout][Cin][Kh][Kw] as pairs of channels [Cout][ceil(Cin/2)][Kh][Kw].
  const std::size_t pairs = (g.c_in + 1) / 2, khw = g.kh * g.kw;
  std::vector<pair16> wp(g.c_out * pairs * khw);
  for (std::size_t o = 0; o < g.c_out; ++o)
    for (std::size_t cp = 0; cp < pairs; ++cp)
      for (std::size_t ij = 0; ij < khw; ++ij) {
        const float* wo = weight + o * g.c_in * khw;
        const std::uint32_t lo = to_bf16(wo[2 * cp * khw + ij]);
        const std::uint32_t hi = 2 * cp + 1 < g.c_in ? to_bf16(wo[(2 * cp + 1) * khw + ij]) : 0u;
        wp[(o * pairs + cp) * khw + ij] = lo | hi << 16;
      }
  const std::size_t in_size = g.c_in * g.h * g.w, out_size = g.c_out * g.pixels_out();
  parallel_for(g.batch, [&](std::size_t n0, std::size_t n1) {
    pair16* xp = bf16_scratch<pair16>(kPairsIn, plan.in.size);
    for (std::size_t n = n0; n < n1; ++n) {
      fill_pairs(plan.in, x + n * in_size, g.c_in, g.h, g.w, g.pad_top, g.pad_left, xp);
      forward_image(xp, g, plan, wp.data(), bias, out + n * out_size);
    }
  });
}

void conv2d_direct_bf16_backward(const float* dout, const float* x, const float* weight,
                                 const Conv2dGeometry& g, float* dx, float* dweight, float* dbias) {
  using namespace direct_bf16;
  const std::size_t k_count = g.patch();
  const Plan fwd = forward_plan(g);
  // dx as a forward conv where it can be one (the padding at most the kernel's span less one, as every
  // 'same' conv): the pairs of its reduction (Cout x Kh x Kw) then fill the kernel's passes as the forward's
  // do; the scatter form (the fp32 backward's) adds into dx every Cout/2 pairs.
  const bool dx_as_forward = dx && dx_forward_applies(g);
  if (dx_as_forward) dx_by_forward(dout, weight, g, dx);
  const DxPairs dx_plan = dx && !dx_as_forward ? make_dx_pairs(weight, g, fwd) : DxPairs{};
  if (dx_as_forward) dx = nullptr;
  const std::size_t per_image = (fwd.in.size + g.c_out * fwd.width) * sizeof(float);
  const std::size_t chunk =
      std::clamp<std::size_t>(kBackwardChunkBytes / per_image, 1, std::max<std::size_t>(g.batch, 1));
  backward_in_parts(g.batch, chunk, g.c_out * k_count, g.c_out, dweight, dbias,
                    [&](std::size_t n0, std::size_t n1, float* dw_part, double* db_part) {
                      backward_chunk(dout, x, g, fwd, dx_plan, n0, n1, dx, dw_part, db_part);
                    });
}

namespace direct_bf16 {
namespace {
void dx_by_forward(const float* dout, const float* weight, const Conv2dGeometry& g, float* dx) {
  const std::size_t span_h = g.dilation_h * (g.kh - 1) + 1, span_w = g.dilation_w * (g.kw - 1) + 1;
  Conv2dGeometry t = g;
  t.c_in = g.c_out, t.h = g.h_out, t.w = g.w_out, t.c_out = g.c_in;
  t.pad_top = span_h - 1 - g.pad_top, t.pad_bottom = span_h - 1 - g.pad_bottom;
  t.pad_left = span_w - 1 - g.pad_left, t.pad_right = span_w - 1 - g.pad_right;
  t.h_out = g.h, t.w_out = g.w;
  const std::size_t khw = g.kh * g.kw;
  std::vector<float> flipped(g.c_in * g.c_out * khw);  // [Cin][Cout][Kh][Kw], flipped in space
  for (std::size_t o = 0; o < g.c_out; ++o)
    for (std::size_t c = 0; c < g.c_in; ++c)
      for (std::size_t ij = 0; ij < khw; ++ij)
        flipped[(c * g.c_out + o) * khw + (khw - 1 - ij)] = weight[(o * g.c_in + c) * khw + ij];
  conv2d_direct_bf16_forward(dout, flipped.data(), nullptr, t, dx);
}
}  // namespace
}  // namespace direct_bf16

#else  // a build without AVX512_BF16: tg::set_precision refuses bf16 before these can be reached

bool conv2d_direct_bf16_compiled() { return false; }

void conv2d_direct_bf16_forward(const float*, const float*, const float*, const Conv2dGeometry&, float*) {
  fail("conv2d: bf16 kernels are not in this build (it does not target AVX512_BF16)");
}

void conv2d_direct_bf16_backward(const float*, const float*, const float*, const Conv2dGeometry&, float*,
                                 float*, float*) {
  fail("conv2d: bf16 kernels are not in this build (it does not target AVX512_BF16)");
}

#endif

}  // namespace tg
