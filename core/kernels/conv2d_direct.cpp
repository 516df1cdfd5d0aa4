// Direct convolution kernels for stride-1 convs (any padding, any dilation), without an im2col matrix.
//
// The trick ("wide" output): copy an image into a zero-padded buffer xp [Cin][Hp][Wp] and compute the output at
// every position p = oh*Wp + ow of an Hout x Wp grid, ow running over the padded width. For the patch element
// k = (c, i, j) the input of position p is then xp[off_k + p] with off_k = c*Hp*Wp + i*dh*Wp + j*dw: for fixed
// k, consecutive positions read consecutive floats. So
//   wide[o][p] = sum_k W[o][k] * xp[off_k + p]
// is a small GEMM whose B operand is read in place, rows starting at off_k. The columns ow >= Wout are garbage
// and dropped when the result is copied out (Wout/Wp of the work is useful: 28/32 for lenet's first conv).
// The register-blocked kernel keeps OB output channels x NB vectors of positions in accumulators; per k it
// loads NB vectors and broadcasts OB weights.
//
// Backward: with dwide the output gradient laid out on the wide grid (garbage columns zero), dx is the same kernel
// with the roles of K and Cout swapped, adding row k into the padded input gradient at off_k; dweight[o][k] = sum_n sum_p dwide[n][o][p] * xp[n][off_k + p] with the
// garbage columns of dwide zeroed, accumulated in registers over a chunk of images.
#include "core/kernels/conv2d_direct.hpp"

#include <xsimd/xsimd.hpp>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <array>
#include <vector>

#include "core/runtime/threads.hpp"

namespace tg {
namespace {

using Batch = xsimd::batch<float>;
constexpr std::size_t V = Batch::size;
// Accumulator registers a kernel may use: 24 of AVX-512's 32, 12 of AVX2's (or SSE's) 16.
constexpr int kMaxAccumulators = V >= 16 ? 24 : 12;
constexpr int kMaxOB = 8, kMaxNB = 4;
constexpr int max_nb(int ob) { return std::min(kMaxNB, std::max(1, kMaxAccumulators / ob)); }

// Keeps a loaded vector in a register: otherwise GCC folds the load into each FMA that uses it (a load per FMA
// instead of one, which made the dweight kernel load-bound).
inline Batch in_register(Batch b) {
#if defined(__GNUC__) && defined(__x86_64__)
  typename Batch::register_type r = b;
  asm("" : "+v"(r));
  return Batch(r);
#else
  return b;
#endif
}

std::size_t round_up(std::size_t n, std::size_t m) { return (n + m - 1) / m * m; }

// ---- the kernel: acc[o][p] = sum_k wk[k][o] * in[off[k] + p] for OB rows o, NB vectors of positions from p0 ----
// Store: out[o*out_stride + p] = acc. Scatter: out[out_off[o] + p] += acc (the dx pass, see below).
template <int OB, int NB, bool Scatter>
void wide_block(const float* in, const std::size_t* off, std::size_t k_count, const float* wk, float* out,
                std::size_t out_stride, const std::size_t* out_off, std::size_t p0) {
  Batch acc[OB][NB];
#pragma GCC unroll 8
  for (int o = 0; o < OB; ++o)
#pragma GCC unroll 4
    for (int v = 0; v < NB; ++v) acc[o][v] = Batch(0.f);
  for (std::size_t k = 0; k < k_count; ++k) {
    const float* src = in + off[k] + p0;
    Batch xv[NB];
#pragma GCC unroll 4
    for (int v = 0; v < NB; ++v) xv[v] = Batch::load_unaligned(src + v * V);
    const float* w = wk + k * OB;
#pragma GCC unroll 8
    for (int o = 0; o < OB; ++o) {
      const Batch wb(w[o]);
#pragma GCC unroll 4
      for (int v = 0; v < NB; ++v) acc[o][v] = xsimd::fma(wb, xv[v], acc[o][v]);
    }
  }
#pragma GCC unroll 8
  for (int o = 0; o < OB; ++o) {
#pragma GCC unroll 4
    for (int v = 0; v < NB; ++v) {
      if constexpr (Scatter) {  // rows overlap in memory: each add completes before the next row's
        float* dst = out + out_off[o] + p0 + v * V;
        (Batch::load_unaligned(dst) + acc[o][v]).store_unaligned(dst);
      } else {
        acc[o][v].store_unaligned(out + o * out_stride + p0 + v * V);
      }
    }
  }
}

using WideFn = void (*)(const float*, const std::size_t*, std::size_t, const float*, float*, std::size_t,
                        const std::size_t*, std::size_t);
template <bool Scatter, int OB, int... NB>
constexpr std::array<WideFn, kMaxNB> wide_row(std::integer_sequence<int, NB...>) {
  return {&wide_block<OB, std::min(NB + 1, max_nb(OB)), Scatter>...};
}
template <bool Scatter, int... OB>
constexpr std::array<std::array<WideFn, kMaxNB>, kMaxOB> wide_table(std::integer_sequence<int, OB...>) {
  return {wide_row<Scatter, OB + 1>(std::make_integer_sequence<int, kMaxNB>())...};
}
constexpr auto kWideKernels = wide_table<false>(std::make_integer_sequence<int, kMaxOB>());
constexpr auto kScatterKernels = wide_table<true>(std::make_integer_sequence<int, kMaxOB>());

// The weights W [rows][K] regrouped for the kernel: block b of OB rows from o0 holds [K][OB] at o0*K.
void pack_weights(const float* w, std::size_t rows, std::size_t k_count, float* packed) {
  for (std::size_t o0 = 0; o0 < rows; o0 += kMaxOB) {
    const std::size_t ob = std::min<std::size_t>(kMaxOB, rows - o0);
    float* block = packed + o0 * k_count;
    for (std::size_t k = 0; k < k_count; ++k)
      for (std::size_t o = 0; o < ob; ++o) block[k * ob + o] = w[(o0 + o) * k_count + k];
  }
}

// For each row o of `rows` and p in [0, width) (a multiple of V): acc = sum_k packed W[o][k] * in[off[k] + p],
// stored to wide[o*width + p], or with out_off added to wide[out_off[o] + p].
void wide_conv(const float* in, const std::size_t* off, std::size_t k_count, const float* packed, std::size_t rows,
               std::size_t width, float* wide, const std::size_t* out_off = nullptr) {
  for (std::size_t o0 = 0; o0 < rows; o0 += kMaxOB) {
    const int ob = static_cast<int>(std::min<std::size_t>(kMaxOB, rows - o0));
    const std::size_t step = static_cast<std::size_t>(max_nb(ob)) * V;
    for (std::size_t p0 = 0; p0 < width; p0 += step) {
      const auto nb = static_cast<std::size_t>(std::min(step, width - p0) / V);
      const auto& table = out_off ? kScatterKernels : kWideKernels;
      table[static_cast<std::size_t>(ob - 1)][nb - 1](in, off, k_count, packed + o0 * k_count,
                                                        out_off ? wide : wide + o0 * width, width,
                                                        out_off ? out_off + o0 : nullptr, p0);
    }
  }
}

// A plane layout: image [C][H][W] placed at (top, left) inside [C][Hp][Wp] zeros, plus `slack` zeros after.
// Short rows (10-28 floats in these nets) copied and zeroed inline: a memmove/memset call per row costs more
// than the row.
inline void copy_row(const float* src, std::size_t n, float* dst) {
  std::size_t i = 0;
  for (; i + V <= n; i += V) Batch::load_unaligned(src + i).store_unaligned(dst + i);
  for (; i < n; ++i) dst[i] = src[i];
}
inline void zero_row(float* dst, std::size_t n) {
  std::size_t i = 0;
  for (; i + V <= n; i += V) Batch(0.f).store_unaligned(dst + i);
  for (; i < n; ++i) dst[i] = 0.f;
}

struct Padded {
  std::size_t channels, hp, wp, size;
  // Writes every float of dst once: the image rows, zeros around them and zeros after the last channel.
  void fill(const float* src, std::size_t h, std::size_t w, std::size_t top, std::size_t left, float* dst) const {
    const std::size_t right = wp - left - w;
    for (std::size_t c = 0; c < channels; ++c) {
      float* plane = dst + c * hp * wp;
      zero_row(plane, top * wp);
      for (std::size_t y = 0; y < h; ++y) {
        float* row = plane + (top + y) * wp;
        zero_row(row, left);
        copy_row(src + (c * h + y) * w, w, row + left);
        zero_row(row + left + w, right);
      }
      zero_row(plane + (top + h) * wp, (hp - top - h) * wp);
    }
    zero_row(dst + channels * hp * wp, size - channels * hp * wp);
  }
};

// Everything the kernels need about one direction (forward or dx) of a conv.
struct Plan {
  Padded in;                   // the padded input of the kernel
  std::size_t width;           // positions computed per output channel: output rows x in.wp, rounded up to V
  std::vector<std::size_t> off;  // off[k] per patch element
};

Plan make_plan(std::size_t channels, std::size_t hp, std::size_t wp, std::size_t kh, std::size_t kw, std::size_t dh,
               std::size_t dw, std::size_t out_h) {
  Plan p;
  p.width = round_up(out_h * wp, V);
  p.off.reserve(channels * kh * kw);
  for (std::size_t c = 0; c < channels; ++c)
    for (std::size_t i = 0; i < kh; ++i)
      for (std::size_t j = 0; j < kw; ++j) p.off.push_back(c * hp * wp + i * dh * wp + j * dw);
  p.in = {channels, hp, wp, p.off.back() + p.width};  // every read of the kernel lies inside
  return p;
}

Plan forward_plan(const Conv2dGeometry& g) {
  return make_plan(g.c_in, g.h + g.pad_top + g.pad_bottom, g.w + g.pad_left + g.pad_right, g.kh, g.kw, g.dilation_h,
                   g.dilation_w, g.h_out);
}

// ---- dweight: acc[o][k] = sum over images and positions of dwide[o][p] * xp[off_k + p] ----
template <int OB, int KB>
void dweight_block(const float* const* dy, const float* const* xp, std::size_t images, std::size_t width,
                   const std::size_t* off, std::size_t k_count, std::size_t o0, std::size_t k0, float* dw) {
  Batch acc[OB][KB];
#pragma GCC unroll 8
  for (int o = 0; o < OB; ++o)
#pragma GCC unroll 8
    for (int k = 0; k < KB; ++k) acc[o][k] = Batch(0.f);
  for (std::size_t n = 0; n < images; ++n) {
    const float* d = dy[n] + o0 * width;
    const float* x = xp[n];
    for (std::size_t p = 0; p < width; p += V) {
      // OB*KB accumulators + OB gradient vectors + one input vector at a time fit the registers.
      Batch dv[OB];
#pragma GCC unroll 8
      for (int o = 0; o < OB; ++o) dv[o] = Batch::load_unaligned(d + o * width + p);
#pragma GCC unroll 8
      for (int k = 0; k < KB; ++k) {
        const Batch xk = in_register(Batch::load_unaligned(x + off[k0 + k] + p));
#pragma GCC unroll 8
        for (int o = 0; o < OB; ++o) acc[o][k] = xsimd::fma(dv[o], xk, acc[o][k]);
      }
    }
  }
#pragma GCC unroll 8
  for (int o = 0; o < OB; ++o)
#pragma GCC unroll 8
    for (int k = 0; k < KB; ++k) dw[(o0 + o) * k_count + k0 + k] += xsimd::hadd(acc[o][k]);
}

constexpr int kDwOB = V >= 16 ? 4 : 3, kDwKB = V >= 16 ? 6 : 4;
using DweightFn = void (*)(const float* const*, const float* const*, std::size_t, std::size_t, const std::size_t*,
                           std::size_t, std::size_t, std::size_t, float*);
template <int OB, int... KB>
constexpr std::array<DweightFn, kDwKB> dweight_row(std::integer_sequence<int, KB...>) {
  return {&dweight_block<OB, KB + 1>...};
}
template <int... OB>
constexpr std::array<std::array<DweightFn, kDwKB>, kDwOB> dweight_table(std::integer_sequence<int, OB...>) {
  return {dweight_row<OB + 1>(std::make_integer_sequence<int, kDwKB>())...};
}
constexpr auto kDweightKernels = dweight_table(std::make_integer_sequence<int, kDwOB>());

// Images per chunk of the dweight pass: their padded inputs and wide gradients together in ~L2.
constexpr std::size_t kChunkBytes = 512 * 1024;

// ---- narrow images: output channels in the vector lanes ----
// The wide grid wastes (Wp - Wout)/Wp of its work: 29% on lenet's 14x14 -> 10x10 conv. When Cout is a multiple of
// V, this kernel has no waste: acc[r][t] holds V output channels of pixel (oh + r, ow0 + t), and per patch element
// k it loads one weight vector Wt[k][o0 .. o0+V) and does R*PT FMAs with input pixels broadcast straight from
// memory (constant offsets from one base pointer per row). Results go pixel-major into pm [pixel][V]; a 16x16
// register transpose then writes them channel-major with the bias (store_transposed).
template <int R, int PT>
void lanes_block(const float* xp, std::size_t wp, const std::size_t* off, std::size_t k_count, const float* wt,
                 std::size_t c_out, float* pm, std::size_t w_out) {
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
    for (int t = 0; t < PT; ++t) acc[r][t].store_unaligned(pm + (static_cast<std::size_t>(r) * w_out + t) * V);
}

#if defined(__AVX512F__)
// GCC 12 warns about the intrinsics' own undefined pass-through operand (a known false positive).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// r[i][j] <- r[j][i] for 16 vectors of 16 floats: unpack pairs, then pairs of pairs, then 128-bit lanes.
inline void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
    r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
    r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
    r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
  }
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xdd);
    t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xdd);
  }
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
  }
}
#pragma GCC diagnostic pop
#endif

// out[o * out_stride + p] = pm[p * V + o] + bias[o] for the V channels of a block and p in [0, pixels); pm has
// pixels rounded up to 16 rows (the extra rows are read, never stored).
void store_transposed(const float* pm, std::size_t pixels, const float* bias, float* out, std::size_t out_stride) {
#if defined(__AVX512F__)
  if constexpr (V == 16) {
    for (std::size_t p0 = 0; p0 < pixels; p0 += 16) {
      __m512 r[16];
      for (std::size_t i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(pm + (p0 + i) * 16);
      transpose16(r);
      const auto mask = static_cast<__mmask16>((1u << std::min<std::size_t>(16, pixels - p0)) - 1u);
      for (std::size_t o = 0; o < 16; ++o) {
        const __m512 v = _mm512_add_ps(r[o], _mm512_set1_ps(bias ? bias[o] : 0.f));
        _mm512_mask_storeu_ps(out + o * out_stride + p0, mask, v);
      }
    }
    return;
  }
#endif
  for (std::size_t o = 0; o < V; ++o) {
    const float b = bias ? bias[o] : 0.f;
    for (std::size_t p = 0; p < pixels; ++p) out[o * out_stride + p] = pm[p * V + o] + b;
  }
}

constexpr int kLanesPT = 12;
using LanesFn = void (*)(const float*, std::size_t, const std::size_t*, std::size_t, const float*, std::size_t, float*,
                         std::size_t);
template <int R, int... PT>
constexpr std::array<LanesFn, kLanesPT> lanes_row(std::integer_sequence<int, PT...>) {
  return {&lanes_block<R, PT + 1>...};
}
constexpr std::array<std::array<LanesFn, kLanesPT>, 2> kLanesKernels = {
    lanes_row<1>(std::make_integer_sequence<int, kLanesPT>()), lanes_row<2>(std::make_integer_sequence<int, kLanesPT>())};

// Whether the lanes kernel does less work than the wide grid: Cout fills whole vectors and the grid wastes more
// than an eighth of its columns.
bool use_lanes(const Conv2dGeometry& g, std::size_t wp) {
  return g.c_out % V == 0 && 8 * (wp - g.w_out) > wp;
}

}  // namespace

bool conv2d_direct_applies(const Conv2dGeometry& g) { return g.stride_h == 1 && g.stride_w == 1; }

void conv2d_direct_forward(const float* x, const float* weight, const float* bias, const Conv2dGeometry& g,
                           float* out) {
  const Plan plan = forward_plan(g);
  const std::size_t k_count = g.patch(), in_size = g.c_in * g.h * g.w, out_size = g.c_out * g.pixels_out();
  std::vector<float> packed(g.c_out * k_count);
  pack_weights(weight, g.c_out, k_count, packed.data());
  if (use_lanes(g, plan.in.wp)) {
    std::vector<float> wt(k_count * g.c_out);  // [K][Cout]
    for (std::size_t o = 0; o < g.c_out; ++o)
      for (std::size_t k = 0; k < k_count; ++k) wt[k * g.c_out + o] = weight[o * k_count + k];
    parallel_for(g.batch, [&](std::size_t n0, std::size_t n1) {
      float* xp = conv_scratch(kPadded, plan.in.size);
      // One block of V channels at a time: pixel-major results, then transposed into the output.
      const std::size_t hw = g.pixels_out(), rows16 = round_up(hw, 16);
      float* pm = conv_scratch(kWide, rows16 * V);
      zero_row(pm + hw * V, (rows16 - hw) * V);
      for (std::size_t n = n0; n < n1; ++n) {
        plan.in.fill(x + n * in_size, g.h, g.w, g.pad_top, g.pad_left, xp);
        for (std::size_t o0 = 0; o0 < g.c_out; o0 += V) {
          for (std::size_t oh = 0; oh < g.h_out; oh += 2) {
            const std::size_t rows = std::min<std::size_t>(2, g.h_out - oh);
            for (std::size_t ow = 0; ow < g.w_out; ow += kLanesPT) {
              const std::size_t pt = std::min<std::size_t>(kLanesPT, g.w_out - ow);
              kLanesKernels[rows - 1][pt - 1](xp + oh * plan.in.wp + ow, plan.in.wp, plan.off.data(), k_count,
                                              wt.data() + o0, g.c_out, pm + (oh * g.w_out + ow) * V, g.w_out);
            }
          }
          store_transposed(pm, hw, bias ? bias + o0 : nullptr, out + n * out_size + o0 * hw, hw);
        }
      }
    });
    return;
  }
  parallel_for(g.batch, [&](std::size_t n0, std::size_t n1) {
    float* xp = conv_scratch(kPadded, plan.in.size);
    float* wide = conv_scratch(kWide, g.c_out * plan.width);
    for (std::size_t n = n0; n < n1; ++n) {
      plan.in.fill(x + n * in_size, g.h, g.w, g.pad_top, g.pad_left, xp);
      wide_conv(xp, plan.off.data(), k_count, packed.data(), g.c_out, plan.width, wide);
      for (std::size_t o = 0; o < g.c_out; ++o) {
        const float b = bias ? bias[o] : 0.f;
        float* dst = out + n * out_size + o * g.pixels_out();
        for (std::size_t oh = 0; oh < g.h_out; ++oh) {
          const float* src = wide + o * plan.width + oh * plan.in.wp;
          for (std::size_t ow = 0; ow < g.w_out; ++ow) dst[oh * g.w_out + ow] = src[ow] + b;
        }
      }
    }
  });
}

void conv2d_direct_backward(const float* dout, const float* x, const float* weight, const Conv2dGeometry& g,
                            float* dx, float* dweight, float* dbias) {
  const std::size_t k_count = g.patch(), in_size = g.c_in * g.h * g.w, hw = g.pixels_out(), out_size = g.c_out * hw;
  const Plan fwd = forward_plan(g);
  // dx: dxp[off_k + p] += sum_o W[o][k] * dwide[o][p], the forward kernel with K and Cout swapped (rows k read
  // the wide gradient at o*width and add into the padded input gradient at off_k).
  // The rows go in (i, j, c) order, so that the rows of one register block lie in different channels: rows of
  // one channel overlap in memory, and an add that reads what the previous one is still storing stalls.
  std::vector<float> packed_t;
  std::vector<std::size_t> dy_off(g.c_out), row_off(k_count);
  if (dx) {
    std::vector<float> transposed(k_count * g.c_out);
    std::size_t r = 0;
    for (std::size_t ij = 0; ij < g.kh * g.kw; ++ij)
      for (std::size_t ch = 0; ch < g.c_in; ++ch, ++r) {
        const std::size_t k = ch * g.kh * g.kw + ij;
        row_off[r] = fwd.off[k];
        for (std::size_t o = 0; o < g.c_out; ++o) transposed[r * g.c_out + o] = weight[o * k_count + k];
      }
    packed_t.resize(transposed.size());
    pack_weights(transposed.data(), k_count, g.c_out, packed_t.data());
    for (std::size_t o = 0; o < g.c_out; ++o) dy_off[o] = o * fwd.width;
  }
  const std::size_t per_image = (fwd.in.size + g.c_out * fwd.width) * sizeof(float);
  const std::size_t chunk = std::clamp<std::size_t>(kChunkBytes / per_image, 1, std::max<std::size_t>(g.batch, 1));
  const std::size_t chunks = (g.batch + chunk - 1) / chunk;
  const std::size_t parts = std::min<std::size_t>(static_cast<std::size_t>(num_threads()), chunks);
  std::vector<float> dweight_parts(dweight ? parts * g.c_out * k_count : 0, 0.f);
  std::vector<double> dbias_parts(dbias ? parts * g.c_out : 0, 0.0);

  parallel_for(parts, [&](std::size_t p0, std::size_t p1) {
    for (std::size_t part = p0; part < p1; ++part) {
      for (std::size_t c = part * chunks / parts; c < (part + 1) * chunks / parts; ++c) {
        const std::size_t n0 = c * chunk, n1 = std::min(g.batch, n0 + chunk), m = n1 - n0;
        if (dbias) {
          for (std::size_t n = n0; n < n1; ++n)
            for (std::size_t o = 0; o < g.c_out; ++o) {
              dbias_parts[part * g.c_out + o] += sum_row(dout + n * out_size + o * hw, hw);
            }
        }
        if (!dx && !dweight) continue;
        // The chunk's wide gradients (zeros in the garbage columns) and, for dweight, padded inputs.
        float* dys = conv_scratch(kWide, m * g.c_out * fwd.width);
        for (std::size_t n = n0; n < n1; ++n) {
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
          float* dxp = conv_scratch(kOther, fwd.in.size);
          for (std::size_t n = n0; n < n1; ++n) {
            std::fill(dxp, dxp + fwd.in.size, 0.f);
            wide_conv(dys + (n - n0) * g.c_out * fwd.width, dy_off.data(), g.c_out, packed_t.data(), k_count,
                      fwd.width, dxp, row_off.data());
            for (std::size_t ch = 0; ch < g.c_in; ++ch)
              for (std::size_t y = 0; y < g.h; ++y)
                copy_row(dxp + (ch * fwd.in.hp + y + g.pad_top) * fwd.in.wp + g.pad_left, g.w,
                         dx + n * in_size + (ch * g.h + y) * g.w);
          }
        }
        if (dweight) {
          float* xs = conv_scratch(kPadded, m * fwd.in.size);
          std::vector<const float*> xp(m), dy(m);
          for (std::size_t n = n0; n < n1; ++n) {
            float* xi = xs + (n - n0) * fwd.in.size;
            fwd.in.fill(x + n * in_size, g.h, g.w, g.pad_top, g.pad_left, xi);
            xp[n - n0] = xi, dy[n - n0] = dys + (n - n0) * g.c_out * fwd.width;
          }
          float* dw = dweight_parts.data() + part * g.c_out * k_count;
          for (std::size_t o0 = 0; o0 < g.c_out; o0 += kDwOB) {
            const std::size_t ob = std::min<std::size_t>(kDwOB, g.c_out - o0);
            for (std::size_t k0 = 0; k0 < k_count; k0 += kDwKB) {
              const std::size_t kb = std::min<std::size_t>(kDwKB, k_count - k0);
              kDweightKernels[ob - 1][kb - 1](dy.data(), xp.data(), m, fwd.width, fwd.off.data(), k_count, o0, k0, dw);
            }
          }
        }
      }
    }
  });
  if (dweight) {
    std::fill(dweight, dweight + g.c_out * k_count, 0.f);
    for (std::size_t part = 0; part < parts; ++part) {
      const float* src = dweight_parts.data() + part * g.c_out * k_count;
      for (std::size_t i = 0; i < g.c_out * k_count; ++i) dweight[i] += src[i];
    }
  }
  if (dbias) sum_bias_parts(dbias_parts.data(), parts, g.c_out, dbias);
}

float* conv_scratch(ConvScratch slot, std::size_t count) {
  thread_local std::vector<float> buffers[kNumConvScratch];
  std::vector<float>& b = buffers[slot];
  if (b.size() < count) b.resize(count);
  return b.data();
}

// Four vector accumulators: a scalar chain of dependent adds is latency-bound (4 cycles per element).
double sum_row(const float* src, std::size_t n) {
  Batch a0(0.f), a1(0.f), a2(0.f), a3(0.f);
  std::size_t i = 0;
  for (; i + 4 * V <= n; i += 4 * V) {
    a0 += Batch::load_unaligned(src + i), a1 += Batch::load_unaligned(src + i + V);
    a2 += Batch::load_unaligned(src + i + 2 * V), a3 += Batch::load_unaligned(src + i + 3 * V);
  }
  for (; i + V <= n; i += V) a0 += Batch::load_unaligned(src + i);
  double s = static_cast<double>(xsimd::hadd((a0 + a1) + (a2 + a3)));
  for (; i < n; ++i) s += src[i];
  return s;
}

void sum_bias_parts(const double* parts, std::size_t count, std::size_t c_out, float* dbias) {
  for (std::size_t o = 0; o < c_out; ++o) {
    double s = 0.0;
    for (std::size_t part = 0; part < count; ++part) s += parts[part * c_out + o];
    dbias[o] = static_cast<float>(s);
  }
}

}  // namespace tg
