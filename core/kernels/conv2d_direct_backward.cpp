// The direct convolution backward for stride-1 convs (the wide grid of conv2d_direct_common.hpp).
//
// With dwide the output gradient laid out on the wide grid (garbage columns zero):
//   dx:      the forward's kernel with the roles of K and Cout swapped, adding row k into the padded input
//            gradient at off_k (wide_block<OB, NB, true>, "scatter");
//   dweight: dweight[o][k] = sum_n sum_p dwide[n][o][p] * xp[n][off_k + p], accumulated in registers over a
//            chunk of images (dweight_block);
//   dbias:   dbias[o] = sum_n sum_p dout[n][o][p].
#include <algorithm>
#include <array>
#include <utility>
#include <vector>
#include <xsimd/xsimd.hpp>

#include "core/kernels/conv2d.hpp"
#include "core/kernels/conv2d_direct_common.hpp"
#include "core/kernels/conv2d_scratch.hpp"
#include "core/runtime/threads.hpp"

namespace tg {
namespace direct {
namespace {

using simd::in_register;
using simd::sum_row;

// ---- the wide-grid kernels, scattered (the dx pass): wide_block<OB, NB, true> for every block size ----
template <int OB, int... NB>
constexpr std::array<WideFn, kMaxNB> scatter_row(std::integer_sequence<int, NB...>) {
  return {&wide_block<OB, std::min(NB + 1, max_nb(OB)), true>...};
}
template <int... OB>
constexpr std::array<std::array<WideFn, kMaxNB>, kMaxOB> scatter_table(std::integer_sequence<int, OB...>) {
  return {scatter_row<OB + 1>(std::make_integer_sequence<int, kMaxNB>())...};
}
constexpr auto kScatterKernels = scatter_table(std::make_integer_sequence<int, kMaxOB>());

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

// The largest dweight register block, output channels x patch elements: 4 x 6 = 24 accumulators on AVX-512,
// 3 x 4 = 12 on AVX2 (kMaxAccumulators), plus the OB gradient vectors and one input vector.
constexpr int kDwOB = V >= 16 ? 4 : 3, kDwKB = V >= 16 ? 6 : 4;
using DweightFn = void (*)(const float* const*, const float* const*, std::size_t, std::size_t,
                           const std::size_t*, std::size_t, std::size_t, std::size_t, float*);
template <int OB, int... KB>
constexpr std::array<DweightFn, kDwKB> dweight_row(std::integer_sequence<int, KB...>) {
  return {&dweight_block<OB, KB + 1>...};
}
template <int... OB>
constexpr std::array<std::array<DweightFn, kDwKB>, kDwOB> dweight_table(std::integer_sequence<int, OB...>) {
  return {dweight_row<OB + 1>(std::make_integer_sequence<int, kDwKB>())...};
}
constexpr auto kDweightKernels = dweight_table(std::make_integer_sequence<int, kDwOB>());

// dweight_block<ob, kb> for 1 <= ob <= kDwOB, 1 <= kb <= kDwKB (`rbreak dweight_block` stops in all).
DweightFn dweight_kernel(std::size_t ob, std::size_t kb) { return kDweightKernels[ob - 1][kb - 1]; }

// Images per chunk of the backward: the chunk's padded inputs and wide gradients together fit in about the
// L2 cache, so the dweight kernel's second pass over them reads the cache, not memory.
constexpr std::size_t kDirectBackwardChunkBytes = 512 * 1024;

// The rows of the dx pass: dxp[off_k + p] += sum_o W[o][k] * dwide[o][p], the forward kernel with K and Cout
// swapped (rows k read the wide gradient at o*width and add into the padded input gradient at off_k).
// The rows go in (i, j, c) order, so that the rows of one register block lie in different channels: rows of
// one channel overlap in memory, and an add that reads what the previous one is still storing stalls.
struct DxPlan {
  std::vector<float> packed_t;       // W^T [K][Cout], rows in (i, j, c) order, packed for wide_block
  std::vector<std::size_t> dy_off;   // dy_off[o] = o * width: where row o of the wide gradient starts
  std::vector<std::size_t> row_off;  // row_off[r] = off_k of the r-th row in (i, j, c) order
};

DxPlan make_dx_plan(const float* weight, const Conv2dGeometry& g, const Plan& fwd) {
  const std::size_t k_count = g.patch();
  DxPlan d{{}, std::vector<std::size_t>(g.c_out), std::vector<std::size_t>(k_count)};
  std::vector<float> transposed(k_count * g.c_out);
  std::size_t r = 0;
  for (std::size_t ij = 0; ij < g.kh * g.kw; ++ij)
    for (std::size_t ch = 0; ch < g.c_in; ++ch, ++r) {
      const std::size_t k = ch * g.kh * g.kw + ij;
      d.row_off[r] = fwd.off[k];
      for (std::size_t o = 0; o < g.c_out; ++o) transposed[r * g.c_out + o] = weight[o * k_count + k];
    }
  d.packed_t.resize(transposed.size());
  pack_weights(transposed.data(), k_count, g.c_out, d.packed_t.data());
  for (std::size_t o = 0; o < g.c_out; ++o) d.dy_off[o] = o * fwd.width;
  return d;
}

// dys [m][Cout][width]: the wide gradients of images n0 .. n0+m, zeros in the garbage columns.
void gather_wide_gradients(const float* dout, const Conv2dGeometry& g, const Plan& fwd, std::size_t n0,
                           std::size_t n1, float* dys) {
  const std::size_t hw = g.pixels_out(), out_size = g.c_out * hw;
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
}

// One chunk of images [n0, n1): adds its bias sums into dbias_part, its dweight into dweight_part, and writes
// its images' dx (each of the three null when not needed).
void backward_chunk(const float* dout, const float* x, const Conv2dGeometry& g, const Plan& fwd,
                    const DxPlan& dx_plan, std::size_t n0, std::size_t n1, float* dx, float* dweight_part,
                    double* dbias_part) {
  const std::size_t k_count = g.patch(), in_size = g.c_in * g.h * g.w, hw = g.pixels_out(),
                    out_size = g.c_out * hw;
  const std::size_t m = n1 - n0;
  if (dbias_part) {
    for (std::size_t n = n0; n < n1; ++n)
      for (std::size_t o = 0; o < g.c_out; ++o) dbias_part[o] += sum_row(dout + n * out_size + o * hw, hw);
  }
  if (!dx && !dweight_part) return;
  float* dys = conv_scratch(kWide, m * g.c_out * fwd.width);
  gather_wide_gradients(dout, g, fwd, n0, n1, dys);
  if (dx) {
    float* dxp = conv_scratch(kOther, fwd.in.size);
    for (std::size_t n = n0; n < n1; ++n) {
      std::fill(dxp, dxp + fwd.in.size, 0.f);
      wide_conv(dys + (n - n0) * g.c_out * fwd.width, dx_plan.dy_off.data(), g.c_out, dx_plan.packed_t.data(),
                k_count, fwd.width, dxp, dx_plan.row_off.data());
      for (std::size_t ch = 0; ch < g.c_in; ++ch)
        for (std::size_t y = 0; y < g.h; ++y)
          copy_row(dxp + (ch * fwd.in.hp + y + g.pad_top) * fwd.in.wp + g.pad_left, g.w,
                   dx + n * in_size + (ch * g.h + y) * g.w);
    }
  }
  if (dweight_part) {
    float* xs = conv_scratch(kPadded, m * fwd.in.size);
    std::vector<const float*> xp(m), dy(m);
    for (std::size_t n = n0; n < n1; ++n) {
      float* xi = xs + (n - n0) * fwd.in.size;
      fwd.in.fill(x + n * in_size, g.h, g.w, g.pad_top, g.pad_left, xi);
      xp[n - n0] = xi, dy[n - n0] = dys + (n - n0) * g.c_out * fwd.width;
    }
    for (std::size_t o0 = 0; o0 < g.c_out; o0 += kDwOB) {
      const std::size_t ob = std::min<std::size_t>(kDwOB, g.c_out - o0);
      for (std::size_t k0 = 0; k0 < k_count; k0 += kDwKB) {
        const std::size_t kb = std::min<std::size_t>(kDwKB, k_count - k0);
        dweight_kernel(ob, kb)(dy.data(), xp.data(), m, fwd.width, fwd.off.data(), k_count, o0, k0,
                               dweight_part);
      }
    }
  }
}

}  // namespace

// wide_block<ob, nb, true>: `rbreak wide_block` stops in every instantiation.
WideFn scatter_kernel(int ob, int nb) {
  return kScatterKernels[static_cast<std::size_t>(ob - 1)][static_cast<std::size_t>(nb - 1)];
}

}  // namespace direct

// Chunks of images split into one contiguous part per thread; each part accumulates its own dweight and
// dbias, added in part order at the end, so results depend only on the thread count.
void conv2d_direct_backward(const float* dout, const float* x, const float* weight, const Conv2dGeometry& g,
                            float* dx, float* dweight, float* dbias) {
  const std::size_t k_count = g.patch();
  const direct::Plan fwd = direct::forward_plan(g);
  const direct::DxPlan dx_plan = dx ? direct::make_dx_plan(weight, g, fwd) : direct::DxPlan{};
  const std::size_t per_image = (fwd.in.size + g.c_out * fwd.width) * sizeof(float);
  const std::size_t chunk = std::clamp<std::size_t>(direct::kDirectBackwardChunkBytes / per_image, 1,
                                                    std::max<std::size_t>(g.batch, 1));
  backward_in_parts(g.batch, chunk, g.c_out * k_count, g.c_out, dweight, dbias,
                    [&](std::size_t n0, std::size_t n1, float* dw_part, double* db_part) {
                      direct::backward_chunk(dout, x, g, fwd, dx_plan, n0, n1, dx, dw_part, db_part);
                    });
}

}  // namespace tg
