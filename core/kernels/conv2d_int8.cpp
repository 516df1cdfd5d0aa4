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

// GCC 12 warns that the masked intrinsics' undefined pass-through operand "may be used uninitialized".
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace tg {
namespace int8_kernels {

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

TG_INT8 std::size_t quantize_row_vnni(const float* const src[4], std::size_t width, float inv, int zp,
                                      std::uint32_t* dst) {
  const int8_common::QuantizeLanes quantize(inv, zp);
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

// ---- the tile: rows output channels x NV * 16 positions ----

// c[r][i] = sum over steps s of the dot of the four bytes of a[off[s] + i] (u8) and of w[r * wstride + s]
// (s8).
template <int MR, int NV>
struct int8_tile {
  TG_INT8 static void run(const std::int32_t* w, std::size_t wstride, const std::uint32_t* a,
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

TG_INT8 void store_run_vnni(const std::int32_t* acc, std::size_t n, std::int32_t correction, float scale,
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

}  // namespace tg
