// int8 convolutions (conv2d_int8.hpp): the input quantized once per image into channel quads, then an
// integer GEMM whose operands are read where they lie.
//
// vpdpbusd sums FOUR products per int32 lane: lane i of acc += u8(a.byte[4i+b]) * s8(w.byte[4i+b]) over
// b = 0..3. So the input becomes uint32 words [ceil(Cin/4)][Hp][Wp] (zero-point padded), each holding the
// quantized values of four channels at one position, and a conv's reduction runs over (ky, kx, quad) steps:
//   stride 1: the wide grid of the direct kernels (conv2d_direct_common.hpp). Output position q = oy * Wp +
//   ox
//             reads the word at q + ky * dh * Wp + kx * dw of its quad's plane: 16 consecutive outputs are
//             one 64-byte load per step, with no im2col matrix. Columns ox >= Wout are computed and dropped.
//   stride > 1: the words each output reads are gathered first into [steps][positions] (im2col of words).
// Then the tile: MR = 6 output channels x NV * 16 positions in 24 zmm accumulators, each step one load per
// 16 positions and one broadcast weight word per channel. Break in it with `rbreak int8_tile`.
// Without VNNI, int8_tile_plain does the same integer sums in C++, so both give the same bits.
// Why one file: the quantization, the word layouts, the tile and its fallback share one plan of the call
// (Plan), and a test of either path must see the same layouts.
#include "core/kernels/conv2d_int8.hpp"

#include <immintrin.h>
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "core/base/error.hpp"
#include "core/kernels/int8_common.hpp"
#include "core/runtime/threads.hpp"

#define TG_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
// GCC 12 warns that the masked intrinsics' undefined pass-through operand "may be used uninitialized".
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace tg {
namespace int8_kernels {

std::atomic<bool> g_fallback{false};

constexpr std::size_t kLanes = 16;          // int32 lanes of a zmm
constexpr std::size_t kBlock = 4 * kLanes;  // positions of a full tile (NV = 4)
constexpr std::size_t kRows = 6;            // output channels of a full tile (MR = 6)

std::uint32_t zero_word(int zp) { return static_cast<std::uint32_t>(zp) * 0x01010101u; }

// ---- quantizing a row of four channels into words ----

// dst[x] = the words of channels src[0..3] at x (a null row is the zero point); returns the values clipped.
std::size_t quantize_row_plain(const float* const src[4], std::size_t width, float inv, int zp,
                               std::uint32_t* dst) {
  const float lo = static_cast<float>(-zp), hi = static_cast<float>(255 - zp);
  std::size_t clipped = 0;
  for (std::size_t x = 0; x < width; ++x) {
    std::uint32_t word = 0;
    for (int b = 0; b < 4; ++b) {
      std::uint32_t q = static_cast<std::uint32_t>(zp);
      if (src[b]) {
        const float t = src[b][x] * inv;
        clipped += (t < lo - 0.5f || t > hi + 0.5f) ? 1 : 0;
        q = quantize_u8(src[b][x], inv, zp);
      }
      word |= q << (8 * b);
    }
    dst[x] = word;
  }
  return clipped;
}

// quantize_u8 on 16 lanes at a time, for one scale and zero point: q as int32 lanes (masked-off lanes: 0 +
// zp), the lanes clipped beyond rounding added to `clipped`. Max first: a NaN becomes lo (vmaxps returns its
// second operand), then vcvtps2dq rounds to nearest even, as quantize_u8 does.
struct QuantizeLanes {
  __m512 inv, lo, hi, lo_clip, hi_clip;
  __m512i zp;
  TG_VNNI QuantizeLanes(float inv_scale, int zero_point)
      : inv(_mm512_set1_ps(inv_scale)),
        lo(_mm512_set1_ps(static_cast<float>(-zero_point))),
        hi(_mm512_set1_ps(static_cast<float>(255 - zero_point))),
        lo_clip(_mm512_set1_ps(static_cast<float>(-zero_point) - 0.5f)),
        hi_clip(_mm512_set1_ps(static_cast<float>(255 - zero_point) + 0.5f)),
        zp(_mm512_set1_epi32(zero_point)) {}
  TG_VNNI __m512i operator()(const float* x, __mmask16 m, std::size_t& clipped) const {
    const __m512 t = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x), inv);
    clipped +=
        static_cast<std::size_t>(__builtin_popcount(_mm512_mask_cmp_ps_mask(m, t, lo_clip, _CMP_LT_OQ) |
                                                    _mm512_mask_cmp_ps_mask(m, t, hi_clip, _CMP_GT_OQ)));
    return _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(t, lo), hi)), zp);
  }
};

TG_VNNI std::size_t quantize_row_vnni(const float* const src[4], std::size_t width, float inv, int zp,
                                      std::uint32_t* dst) {
  const QuantizeLanes quantize(inv, zp);
  const __m512i vzp = _mm512_set1_epi32(zp);
  std::size_t clipped = 0;
  for (std::size_t x = 0; x < width; x += kLanes) {
    const std::size_t n = std::min(kLanes, width - x);
    const __mmask16 m = static_cast<__mmask16>((1u << n) - 1u);
    __m512i word = _mm512_setzero_si512();
    for (int b = 0; b < 4; ++b) {
      const __m512i q = src[b] ? quantize(src[b] + x, m, clipped) : vzp;
      word = _mm512_or_si512(word, _mm512_slli_epi32(q, static_cast<unsigned>(8 * b)));
    }
    _mm512_mask_storeu_epi32(dst + x, m, word);
  }
  return clipped;
}

// x [n] to bytes (q of quantize_u8); returns the values clipped beyond rounding.
std::size_t quantize_bytes_plain(const float* x, std::size_t n, float inv, int zp, std::uint8_t* dst) {
  const float lo = static_cast<float>(-zp), hi = static_cast<float>(255 - zp);
  std::size_t clipped = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const float t = x[i] * inv;
    clipped += (t < lo - 0.5f || t > hi + 0.5f) ? 1 : 0;
    dst[i] = quantize_u8(x[i], inv, zp);
  }
  return clipped;
}

TG_VNNI std::size_t quantize_bytes_vnni(const float* x, std::size_t n, float inv, int zp, std::uint8_t* dst) {
  const QuantizeLanes quantize(inv, zp);
  std::size_t clipped = 0;
  for (std::size_t i = 0; i < n; i += kLanes) {
    const __mmask16 m = static_cast<__mmask16>(n - i >= kLanes ? 0xffffu : (1u << (n - i)) - 1u);
    _mm_mask_storeu_epi8(dst + i, m, _mm512_cvtepi32_epi8(quantize(x + i, m, clipped)));
  }
  return clipped;
}

// ---- the tile: rows output channels x NV * 16 positions ----

// c[r][i] = sum over steps s of the dot of the four bytes of a[off[s] + i] (u8) and of w[r * wstride + s]
// (s8).
template <int MR, int NV>
struct int8_tile {
  TG_VNNI static void run(const std::int32_t* w, std::size_t wstride, const std::uint32_t* a,
                          const std::size_t* off, std::size_t steps, std::int32_t* c) {
    __m512i acc[MR][NV];
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_si512();
    for (std::size_t s = 0; s < steps; ++s) {
      const std::uint32_t* as = a + off[s];
      __m512i av[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) av[v] = _mm512_loadu_si512(as + kLanes * static_cast<std::size_t>(v));
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) {
        const __m512i b = _mm512_set1_epi32(w[static_cast<std::size_t>(r) * wstride + s]);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_dpbusd_epi32(acc[r][v], av[v], b);
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

void int8_tile_plain(int mr, int nv, const std::int32_t* w, std::size_t wstride, const std::uint32_t* a,
                     const std::size_t* off, std::size_t steps, std::int32_t* c) {
  const std::size_t width = kLanes * static_cast<std::size_t>(nv);
  for (int r = 0; r < mr; ++r) {
    std::int32_t* row = c + static_cast<std::size_t>(r) * kBlock;
    std::fill(row, row + width, 0);
    for (std::size_t s = 0; s < steps; ++s) {
      const auto word = static_cast<std::uint32_t>(w[static_cast<std::size_t>(r) * wstride + s]);
      const std::uint32_t* as = a + off[s];
      for (std::size_t i = 0; i < width; ++i) {
        std::int32_t dot = 0;
        for (int b = 0; b < 4; ++b) {
          const int u = static_cast<int>((as[i] >> (8 * b)) & 0xffu);
          const int sv = static_cast<int>(static_cast<std::int8_t>((word >> (8 * b)) & 0xffu));
          dot += u * sv;
        }
        row[i] += dot;
      }
    }
  }
}

// ---- one conv call ----

struct Plan {
  const Conv2dGeometry& g;
  const Conv2dInt8Weights& w;
  Int8Quant in;
  Int8Epilogue e;
  bool vnni;
  std::size_t hp, wp, plane, quads_in;    // the padded word planes of one image: [quads_in][hp][wp]
  bool wide;                              // stride 1: the wide grid; else gathered words
  std::size_t grid_w, positions, padded;  // output q = oy * grid_w + ox for q < positions; padded to 16
  std::vector<std::size_t> offsets;       // [groups][steps]: word offsets of each step (wide grid)
  std::size_t words_per_image;            // the quantized image, with the slack the last tile reads
};

Plan make_plan(const Conv2dGeometry& g, const Conv2dInt8Weights& w, Int8Quant in, const Int8Epilogue& e) {
  Plan p{g, w, in, e, int8_vnni_supported(), 0, 0, 0, 0, false, 0, 0, 0, {}, 0};
  p.hp = g.pad_top + g.h + g.pad_bottom;
  p.wp = g.pad_left + g.w + g.pad_right;
  p.plane = p.hp * p.wp;
  p.quads_in = (g.c_in + 3) / 4;
  p.wide = g.stride_h == 1 && g.stride_w == 1;
  p.grid_w = p.wide ? p.wp : g.w_out;
  p.positions = g.h_out * p.grid_w;
  p.padded = (p.positions + kLanes - 1) / kLanes * kLanes;
  const std::size_t steps = w.steps;
  p.offsets.resize(g.groups * steps);
  std::size_t reach = p.quads_in * p.plane;
  for (std::size_t gi = 0; gi < g.groups; ++gi) {
    for (std::size_t ky = 0; ky < g.kh; ++ky)
      for (std::size_t kx = 0; kx < g.kw; ++kx)
        for (std::size_t j = 0; j < w.quads; ++j) {
          const std::size_t s = (ky * g.kw + kx) * w.quads + j;
          const std::size_t o =
              p.wide ? (w.quad_base[gi] + j) * p.plane + ky * g.dilation_h * p.wp + kx * g.dilation_w
                     : s * p.padded;
          p.offsets[gi * steps + s] = o;
          if (p.wide) reach = std::max(reach, o + p.padded);
        }
  }
  p.words_per_image = reach;
  return p;
}

// The quantized, zero-point padded words of image x [Cin, H, W]; returns the values clipped.
std::size_t quantize_image(const Plan& p, const float* x, std::uint32_t* words) {
  const Conv2dGeometry& g = p.g;
  std::fill(words, words + p.words_per_image, zero_word(p.in.zero_point));
  const float inv = 1.f / p.in.scale;
  std::size_t clipped = 0;
  for (std::size_t cq = 0; cq < p.quads_in; ++cq) {
    for (std::size_t y = 0; y < g.h; ++y) {
      const float* src[4];
      for (std::size_t b = 0; b < 4; ++b) {
        const std::size_t c = cq * 4 + b;
        src[b] = c < g.c_in ? x + (c * g.h + y) * g.w : nullptr;
      }
      std::uint32_t* dst = words + cq * p.plane + (y + g.pad_top) * p.wp + g.pad_left;
      clipped += p.vnni ? quantize_row_vnni(src, g.w, inv, p.in.zero_point, dst)
                        : quantize_row_plain(src, g.w, inv, p.in.zero_point, dst);
    }
  }
  return clipped;
}

// The strided case: gathered[s][q] = the word output q reads at step s of group gi.
void gather_group(const Plan& p, std::size_t gi, const std::uint32_t* words, std::uint32_t* gathered) {
  const Conv2dGeometry& g = p.g;
  const std::size_t quads = p.w.quads;
  for (std::size_t ky = 0; ky < g.kh; ++ky)
    for (std::size_t kx = 0; kx < g.kw; ++kx)
      for (std::size_t j = 0; j < quads; ++j) {
        std::uint32_t* row = gathered + ((ky * g.kw + kx) * quads + j) * p.padded;
        const std::uint32_t* plane = words + (p.w.quad_base[gi] + j) * p.plane;
        for (std::size_t oy = 0; oy < g.h_out; ++oy) {
          const std::uint32_t* src = plane + (oy * g.stride_h + ky * g.dilation_h) * p.wp + kx * g.dilation_w;
          for (std::size_t ox = 0; ox < g.w_out; ++ox) row[oy * g.w_out + ox] = src[ox * g.stride_w];
        }
        std::fill(row + p.positions, row + p.padded, zero_word(p.in.zero_point));
      }
}

// ---- the epilogue: sums to float32 outputs ----
// dst[i] = act(fma(float(acc[i] - correction), scale, bias) + res[i]) for i < n (res may be null). ReLU as
// max(v, 0), ReLU6 as min(max(v, 0), 6), in vmaxps/vminps's order, so that both forms give the same bits.
void store_run_plain(const std::int32_t* acc, std::size_t n, std::int32_t correction, float scale, float bias,
                     const float* res, ConvActivation act, float* dst) {
  for (std::size_t i = 0; i < n; ++i) {
    float v = std::fma(static_cast<float>(acc[i] - correction), scale, bias);
    if (res) v = v + res[i];
    if (act != ConvActivation::None) v = v > 0.f ? v : 0.f;
    if (act == ConvActivation::ReLU6) v = v < 6.f ? v : 6.f;
    dst[i] = v;
  }
}

TG_VNNI void store_run_vnni(const std::int32_t* acc, std::size_t n, std::int32_t correction, float scale,
                            float bias, const float* res, ConvActivation act, float* dst) {
  const __m512i corr = _mm512_set1_epi32(correction);
  const __m512 vs = _mm512_set1_ps(scale), vb = _mm512_set1_ps(bias);
  const __m512 zero = _mm512_setzero_ps(), six = _mm512_set1_ps(6.f);
  for (std::size_t i = 0; i < n; i += kLanes) {
    const __mmask16 m = static_cast<__mmask16>(n - i >= kLanes ? 0xffffu : (1u << (n - i)) - 1u);
    const __m512i a = _mm512_maskz_loadu_epi32(m, acc + i);
    __m512 v = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(a, corr)), vs, vb);
    if (res) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, res + i));
    if (act != ConvActivation::None) v = _mm512_max_ps(v, zero);
    if (act == ConvActivation::ReLU6) v = _mm512_min_ps(v, six);
    _mm512_mask_storeu_ps(dst + i, m, v);
  }
}

// Output positions [q0, q0 + width) of output channels [o0, o0 + mr) of image n from the tile's sums c.
void store_tile(const Plan& p, std::size_t n, std::size_t o0, int mr, std::size_t q0, std::size_t width,
                const std::int32_t* c, float* out) {
  const Conv2dGeometry& g = p.g;
  const std::size_t end = std::min(q0 + width, p.positions);
  for (int r = 0; r < mr; ++r) {
    const std::size_t o = o0 + static_cast<std::size_t>(r);
    const float scale = p.in.scale * p.w.scale[o];
    const std::int32_t correction = p.in.zero_point * p.w.sums[o];
    const float bias = p.e.bias ? p.e.bias[o] : 0.f;
    const std::size_t base = (n * g.c_out + o) * g.h_out * g.w_out;
    const std::int32_t* row = c + static_cast<std::size_t>(r) * kBlock;
    const auto store = [&](const std::int32_t* acc, std::size_t n, std::size_t at) {
      const float* res = p.e.residual ? p.e.residual + base + at : nullptr;
      if (p.vnni) {
        store_run_vnni(acc, n, correction, scale, bias, res, p.e.act, out + base + at);
      } else {
        store_run_plain(acc, n, correction, scale, bias, res, p.e.act, out + base + at);
      }
    };
    if (p.grid_w == g.w_out) {  // no dropped columns: the block is one run of the output
      store(row, end - q0, q0);
      continue;
    }
    std::size_t oy = q0 / p.grid_w, ox = q0 % p.grid_w;
    for (std::size_t q = q0; q < end;) {
      const std::size_t run = std::min(end - q, p.grid_w - ox);
      const std::size_t valid = ox < g.w_out ? std::min(run, g.w_out - ox) : 0;
      store(row + (q - q0), valid, oy * g.w_out + ox);
      q += run, ox = 0, ++oy;
    }
  }
}

// Positions [q0, q0 + width) of every output channel of group gi, image n; a = the group's operand words.
void run_block(const Plan& p, std::size_t n, std::size_t gi, const std::uint32_t* a, std::size_t q0,
               std::size_t width, std::int32_t* c, float* out) {
  const std::size_t cog = p.g.c_out / p.g.groups, steps = p.w.steps;
  const std::size_t* off = p.offsets.data() + gi * steps;
  const int nv = static_cast<int>((width + kLanes - 1) / kLanes);
  for (std::size_t o = 0; o < cog; o += kRows) {
    const int mr = static_cast<int>(std::min(kRows, cog - o));
    const std::size_t og = gi * cog + o;
    const std::int32_t* w = p.w.words.data() + og * steps;
    if (p.vnni) {
      int8_common::dispatch_tile<int8_tile>(mr, nv, w, steps, a + q0, off, steps, c);
    } else {
      int8_tile_plain(mr, nv, w, steps, a + q0, off, steps, c);
    }
    store_tile(p, n, og, mr, q0, width, c, out);
  }
}

// Image n from its quantized words: group by group, block by block (in parallel when `parallel`).
void run_image(const Plan& p, std::size_t n, const std::uint32_t* words, std::vector<std::uint32_t>& gathered,
               float* out, bool parallel) {
  const std::size_t blocks = (p.padded + kBlock - 1) / kBlock;
  for (std::size_t gi = 0; gi < p.g.groups; ++gi) {
    const std::uint32_t* a = words;
    if (!p.wide) {
      gathered.resize(p.w.steps * p.padded);
      gather_group(p, gi, words, gathered.data());
      a = gathered.data();
    }
    auto body = [&](std::size_t b0, std::size_t b1) {
      alignas(64) std::int32_t c[kRows * kBlock];
      for (std::size_t b = b0; b < b1; ++b) {
        const std::size_t q0 = b * kBlock;
        run_block(p, n, gi, a, q0, std::min(kBlock, p.padded - q0), c, out);
      }
    };
    if (parallel) {
      // Waking a worker costs microseconds: each thread gets at least ~25,000 cycles of tiles (a block of 64
      // positions is about 2 * Cout/G * steps cycles). Measured on batch-1 convnet, resnet20 and cifarnet
      // with 2 threads: 25,000 beat 10,000, 50,000 and 100,000.
      const std::size_t cost = 2 * (p.g.c_out / p.g.groups) * p.w.steps;
      parallel_for(blocks, body, std::max<std::size_t>(1, 25000 / std::max<std::size_t>(cost, 1)));
    } else {
      body(0, blocks);
    }
  }
}

}  // namespace int8_kernels

std::string int8_vnni_unsupported_reason() {
  using namespace int8_kernels;
  if (g_fallback.load()) return "this CPU's AVX512_VNNI instructions are hidden (force_int8_fallback)";
  static const bool env_hidden = [] {
    const char* env = std::getenv("TAPEGRAD_NO_VNNI");
    return env && *env && std::strcmp(env, "0") != 0;
  }();
  if (env_hidden) return "this CPU's AVX512_VNNI instructions are hidden (TAPEGRAD_NO_VNNI is set)";
  static const bool has = __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl");
  if (!has) {
    return "this CPU has no AVX512_VNNI instructions (vpdpbusd: Cascade Lake, Ice Lake, Zen 4 and later); "
           "the "
           "int8 kernels run in plain C++";
  }
  return "";
}

bool int8_vnni_supported() { return int8_vnni_unsupported_reason().empty(); }

void force_int8_fallback(bool on) { int8_kernels::g_fallback.store(on); }

std::uint8_t quantize_u8(float x, float inv_scale, int zero_point) {
  using namespace int8_kernels;
  float t = x * inv_scale;
  const float lo = static_cast<float>(-zero_point), hi = static_cast<float>(255 - zero_point);
  if (!(t >= lo)) t = lo;  // NaN too
  if (t > hi) t = hi;
  return static_cast<std::uint8_t>(static_cast<int>(std::nearbyint(t)) + zero_point);
}

Conv2dInt8Weights pack_conv2d_int8(const std::int8_t* q, const float* scale, const Conv2dGeometry& g) {
  using namespace int8_kernels;
  const std::size_t cig = g.c_in / g.groups, cog = g.c_out / g.groups, kk = g.kh * g.kw;
  const std::size_t quads_in = (g.c_in + 3) / 4;
  Conv2dInt8Weights w;
  w.c_out = g.c_out;
  // The quads a group's channels [gi * cig, (gi + 1) * cig) touch; every group reads as many (the most any
  // needs), starting early enough to stay inside the image's quads.
  for (std::size_t gi = 0; gi < g.groups; ++gi)
    w.quads = std::max(w.quads, ((gi + 1) * cig + 3) / 4 - gi * cig / 4);
  w.quad_base.resize(g.groups);
  for (std::size_t gi = 0; gi < g.groups; ++gi) w.quad_base[gi] = std::min(gi * cig / 4, quads_in - w.quads);
  w.steps = kk * w.quads;
  w.words.assign(g.c_out * w.steps, 0);
  w.sums.assign(g.c_out, 0);
  w.scale.assign(scale, scale + g.c_out);
  for (std::size_t o = 0; o < g.c_out; ++o) {
    const std::size_t gi = o / cog;
    for (std::size_t ci = 0; ci < cig; ++ci) {
      const std::size_t c = gi * cig + ci;  // the input channel
      const std::size_t j = c / 4 - w.quad_base[gi], b = c % 4;
      for (std::size_t k = 0; k < kk; ++k) {
        const std::int8_t v = q[(o * cig + ci) * kk + k];
        auto& word = w.words[o * w.steps + k * w.quads + j];
        word =
            static_cast<std::int32_t>(static_cast<std::uint32_t>(word) |
                                      (static_cast<std::uint32_t>(static_cast<std::uint8_t>(v)) << (8 * b)));
        w.sums[o] += v;
      }
    }
  }
  return w;
}

Conv2dInt8Weights pack_conv2d_int8(const float* weight, const Conv2dGeometry& g) {
  using namespace int8_kernels;
  const std::size_t row = g.patch();
  std::vector<std::int8_t> q(g.c_out * row);
  std::vector<float> scale(g.c_out);
  for (std::size_t o = 0; o < g.c_out; ++o) {
    const float* w = weight + o * row;
    float m = 0.f;
    for (std::size_t i = 0; i < row; ++i) m = std::max(m, std::fabs(w[i]));
    scale[o] = m > 0.f && std::isfinite(m) ? m / 127.f : 1.f;
    for (std::size_t i = 0; i < row; ++i) {
      const float t = std::clamp(std::nearbyint(w[i] / scale[o]), -127.f, 127.f);
      q[o * row + i] = static_cast<std::int8_t>(std::isnan(t) ? 0.f : t);
    }
  }
  return pack_conv2d_int8(q.data(), scale.data(), g);
}

std::size_t conv2d_int8_forward(const float* x, const Conv2dInt8Weights& w, const Conv2dGeometry& g,
                                Int8Quant in, const Int8Epilogue& e, float* out) {
  using namespace int8_kernels;
  if (w.c_out != g.c_out || w.steps != g.kh * g.kw * w.quads || w.quad_base.size() != g.groups)
    fail("conv2d_int8: the packed weights are for another conv (", w.c_out, " output channels, ", w.steps,
         " steps; this one has ", g.c_out, " and ", g.kh, "x", g.kw, " kernels in ", g.groups, " groups)");
  if (!(in.scale > 0.f) || !std::isfinite(in.scale) || in.zero_point < 0 || in.zero_point > 255)
    fail("conv2d_int8: the input's scale must be positive and finite and its zero point in [0, 255], got ",
         in.scale, " and ", in.zero_point);
  if (conv2d_int8_depthwise_applies(g)) return conv2d_int8_depthwise_forward(x, w, g, in, e, out);
  const Plan p = make_plan(g, w, in, e);
  const std::size_t image = g.c_in * g.h * g.w;
  if (g.batch == 1 || num_threads() == 1) {
    std::vector<std::uint32_t> words(p.words_per_image), gathered;
    std::size_t clipped = 0;
    for (std::size_t n = 0; n < g.batch; ++n) {
      clipped += quantize_image(p, x + n * image, words.data());
      run_image(p, n, words.data(), gathered, out, true);
    }
    return clipped;
  }
  std::atomic<std::size_t> clipped{0};
  parallel_for(g.batch, [&](std::size_t n0, std::size_t n1) {
    std::vector<std::uint32_t> words(p.words_per_image), gathered;
    std::size_t mine = 0;
    for (std::size_t n = n0; n < n1; ++n) {
      mine += quantize_image(p, x + n * image, words.data());
      run_image(p, n, words.data(), gathered, out, false);
    }
    clipped += mine;
  });
  return clipped.load();
}

namespace int8_common {

std::size_t quantize_bytes(const float* x, std::size_t n, float inv_scale, int zero_point, std::uint8_t* dst,
                           bool vnni) {
  return vnni ? int8_kernels::quantize_bytes_vnni(x, n, inv_scale, zero_point, dst)
              : int8_kernels::quantize_bytes_plain(x, n, inv_scale, zero_point, dst);
}

void store_run(const std::int32_t* acc, std::size_t n, std::int32_t correction, float scale, float bias,
               const float* res, ConvActivation act, float* dst, bool vnni) {
  if (vnni) {
    int8_kernels::store_run_vnni(acc, n, correction, scale, bias, res, act, dst);
  } else {
    int8_kernels::store_run_plain(acc, n, correction, scale, bias, res, act, dst);
  }
}

}  // namespace int8_common
}  // namespace tg
