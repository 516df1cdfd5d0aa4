// Internals shared by the direct convolution kernels for stride-1 convs (any padding, any dilation), which
// run without an im2col matrix: conv2d_direct_forward.cpp (the forward) and conv2d_direct_backward.cpp (dx
// and dweight). Not a public header: everything here lives in tg::direct.
//
// The trick ("wide" output): copy an image into a zero-padded buffer xp [Cin][Hp][Wp] and compute the output
// at every position p = oh*Wp + ow of an Hout x Wp grid, ow running over the padded width. For the patch
// element k = (c, i, j) the input of position p is then xp[off_k + p] with off_k = c*Hp*Wp + i*dh*Wp + j*dw:
// for fixed k, consecutive positions read consecutive floats. So
//   wide[o][p] = sum_k W[o][k] * xp[off_k + p]
// is a small GEMM whose B operand is read in place, rows starting at off_k. The columns ow >= Wout are
// garbage and dropped when the result is copied out (Wout/Wp of the work is useful: 28/32 for lenet's first
// conv). The register-blocked kernel (wide_block) keeps OB output channels x NB vectors of positions in
// accumulators; per k it loads NB vectors and broadcasts OB weights.
//
// Debugging: the kernels are templates picked from tables of function pointers (one instantiation per
// register block size), so break in all of them by regex: `rbreak wide_block`, `rbreak lanes_block`,
// `rbreak dweight_block`; the table lookups are the small functions wide_kernel, scatter_kernel,
// lanes_kernel and dweight_kernel.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>
#include <xsimd/xsimd.hpp>

#include "core/kernels/conv2d.hpp"
#include "core/kernels/simd.hpp"

namespace tg::direct {

using simd::Batch;
using simd::copy_row;
using simd::round_up;
using simd::V;
using simd::zero_row;

// Accumulator registers a kernel may use: 24 of AVX-512's 32, 12 of AVX2's (or SSE's) 16; the rest hold the
// loaded inputs and the broadcast weights.
inline constexpr int kMaxAccumulators = V >= 16 ? 24 : 12;
// The largest register block of wide_block: output channels (rows) x vectors of positions.
inline constexpr int kMaxOB = 8, kMaxNB = 4;
// Vectors of positions per block for OB rows: as many as the accumulators allow, at most kMaxNB.
constexpr int max_nb(int ob) { return std::min(kMaxNB, std::max(1, kMaxAccumulators / ob)); }

// ---- the kernel: acc[o][p] = sum_k W[o][k] * in[off[k] + p] for OB rows o, NB vectors of positions from p0
// Store (the forward): out[o*out_stride + p] = acc, W read in place from the weight's rows, w_stride floats
// apart (no packed copy: at batch 1 packing every weight on every call cost as much as the convs of a
// MobileNet's 1x1 layers). Scatter (the dx pass, see the backward): out[out_off[o] + p] += acc, W packed
// [K][OB] (pack_weights).
template <int OB, int NB, bool Scatter>
void wide_block(const float* in, const std::size_t* off, std::size_t k_count, const float* wk,
                std::size_t w_stride, float* out, std::size_t out_stride, const std::size_t* out_off,
                std::size_t p0) {
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
#pragma GCC unroll 8
    for (int o = 0; o < OB; ++o) {
      const Batch wb(Scatter ? wk[k * OB + o] : wk[o * w_stride + k]);
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

using WideFn = void (*)(const float*, const std::size_t*, std::size_t, const float*, std::size_t, float*,
                        std::size_t, const std::size_t*, std::size_t);
// wide_block<ob, nb, false> (conv2d_direct_forward.cpp) and wide_block<ob, nb, true>
// (conv2d_direct_backward.cpp), for 1 <= ob <= kMaxOB, 1 <= nb <= kMaxNB (nb capped at max_nb(ob)).
WideFn wide_kernel(int ob, int nb);
WideFn scatter_kernel(int ob, int nb);

// The weights W [rows][K] regrouped for the kernel: block b of OB rows from o0 holds [K][OB] at o0*K.
inline void pack_weights(const float* w, std::size_t rows, std::size_t k_count, float* packed) {
  for (std::size_t o0 = 0; o0 < rows; o0 += kMaxOB) {
    const std::size_t ob = std::min<std::size_t>(kMaxOB, rows - o0);
    float* block = packed + o0 * k_count;
    for (std::size_t k = 0; k < k_count; ++k)
      for (std::size_t o = 0; o < ob; ++o) block[k * ob + o] = w[(o0 + o) * k_count + k];
  }
}

// For each row o of `rows` and p in [0, width) (a multiple of V):
//   acc = sum_k W[o][k] * in[off[k] + p],
// stored to wide[o*width + p] (W: the weight's rows [rows][K], read in place), or with out_off added to
// wide[out_off[o] + p] (W: packed by pack_weights).
inline void wide_conv(const float* in, const std::size_t* off, std::size_t k_count, const float* w,
                      std::size_t rows, std::size_t width, float* wide,
                      const std::size_t* out_off = nullptr) {
  for (std::size_t o0 = 0; o0 < rows; o0 += kMaxOB) {
    const int ob = static_cast<int>(std::min<std::size_t>(kMaxOB, rows - o0));
    const std::size_t step = static_cast<std::size_t>(max_nb(ob)) * V;
    for (std::size_t p0 = 0; p0 < width; p0 += step) {
      const auto nb = static_cast<int>(std::min(step, width - p0) / V);
      const WideFn kernel = out_off ? scatter_kernel(ob, nb) : wide_kernel(ob, nb);
      kernel(in, off, k_count, w + o0 * k_count, k_count, out_off ? wide : wide + o0 * width, width,
             out_off ? out_off + o0 : nullptr, p0);
    }
  }
}

// A plane layout: image [C][H][W] placed at (top, left) inside [C][Hp][Wp] zeros, plus zeros after the last
// channel up to `size` floats.
struct Padded {
  std::size_t channels, hp, wp, size;
  // Writes every float of dst once: the image rows, zeros around them and zeros after the last channel.
  // The source's planes are `src_plane` floats apart (0: h * w, a whole image; more for a band of rows).
  void fill(const float* src, std::size_t h, std::size_t w, std::size_t top, std::size_t left, float* dst,
            std::size_t src_plane = 0) const {
    const std::size_t right = wp - left - w;
    if (src_plane == 0) src_plane = h * w;
    for (std::size_t c = 0; c < channels; ++c) {
      float* plane = dst + c * hp * wp;
      zero_row(plane, top * wp);
      for (std::size_t y = 0; y < h; ++y) {
        float* row = plane + (top + y) * wp;
        zero_row(row, left);
        copy_row(src + c * src_plane + y * w, w, row + left);
        zero_row(row + left + w, right);
      }
      zero_row(plane + (top + h) * wp, (hp - top - h) * wp);
    }
    zero_row(dst + channels * hp * wp, size - channels * hp * wp);
  }
};

// Everything the kernels need about one direction (forward or dx) of a conv.
struct Plan {
  Padded in;          // the padded input of the kernel
  std::size_t width;  // positions computed per output channel: output rows x in.wp, rounded up to V
  std::vector<std::size_t> off;  // off[k] per patch element
};

inline Plan make_plan(std::size_t channels, std::size_t hp, std::size_t wp, std::size_t kh, std::size_t kw,
                      std::size_t dh, std::size_t dw, std::size_t out_h) {
  Plan p;
  p.width = round_up(out_h * wp, V);
  p.off.reserve(channels * kh * kw);
  for (std::size_t c = 0; c < channels; ++c)
    for (std::size_t i = 0; i < kh; ++i)
      for (std::size_t j = 0; j < kw; ++j) p.off.push_back(c * hp * wp + i * dh * wp + j * dw);
  p.in = {channels, hp, wp, p.off.back() + p.width};  // every read of the kernel lies inside
  return p;
}

inline Plan forward_plan(const Conv2dGeometry& g) {
  return make_plan(g.c_in, g.h + g.pad_top + g.pad_bottom, g.w + g.pad_left + g.pad_right, g.kh, g.kw,
                   g.dilation_h, g.dilation_w, g.h_out);
}

}  // namespace tg::direct
