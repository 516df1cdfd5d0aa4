// The layout the depthwise convolution kernels (conv2d_depthwise_forward.cpp, conv2d_depthwise_backward.cpp)
// share: one correlation of planes (Pass) through a zero-padded buffer of column phases, the per-thread
// buffers of a pass (PlaneScratch), and correlate_plane, the forward's correlation that the dx pass runs too.
// Not a public header: everything here lives in tg::depthwise.
//
// Depthwise convolution (groups = Cin = Cout): every channel plane has its own Kh x Kw filter.
//   out[n][c][oh][ow] = bias[c] + sum_{i,j} w[c][i][j] *
//                       x[n][c][oh*sh + i*dh - pad_top][ow*sw + j*dw - pad_left]
// x, out NCHW; weight [C, 1, Kh, Kw]. A filter has a handful of taps, so this is no GEMM: each plane is one
// 2-D correlation, vector FMAs along the rows.
//
// The layout ("phases"): a plane is copied once into a zero-padded buffer whose rows are split by column
// phase, phase q of a row holding the padded columns q, q + sw, q + 2sw, ... Then the inputs of tap (i, j)
// for the outputs ow = 0, 1, 2, ... of output row oh are consecutive floats: phase (j*dw) % sw of padded
// row oh*sh + i*dh, from index (j*dw) / sw. Every tap of every stride is a contiguous run with no bounds
// checks (the padding is in the buffer). The buffer's zeros are written once per thread and chunk of planes;
// each plane then writes only its values. Outputs are computed in whole vectors along the rows, straight into
// the output when its width is whole vectors, else on a wider grid whose valid part is copied out; rows in
// blocks of kRows (independent accumulator chains), the last few one by one.
// The 3x3 filters with row stride 1 or 2 (MobileNet's) run loops that load each input vector once for all
// the output rows that read it (correlate3x3_rows, dweight3x3_rows); other filters run the generic tap loop.
// The plain definition to test against is conv2d_reference.cpp.
//
//   forward:  the correlation above, per (n, c) plane, in parallel over the planes;
//   dx:       the adjoint is a stride-1 correlation of dout with the flipped filter: dout (spread out by the
//             stride, zeros between, for stride > 1) placed at ((Kh-1)*dh - pad_top, (Kw-1)*dw - pad_left)
//             in a zero buffer. Per (n, c) plane, in parallel;
//   dweight:  dw[c][i][j] = sum_n sum_{oh,ow} dout[n][c][oh][ow] * (input of tap (i, j) at (oh, ow)), one
//             vector accumulator per tap, per channel in parallel (the sum over n stays in one thread, so
//             results do not depend on the thread count); dbias[c] = the sum of dout[n][c] alongside.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

#include "core/kernels/conv2d.hpp"
#include "core/kernels/conv2d_scratch.hpp"
#include "core/kernels/simd.hpp"

namespace tg::depthwise {

using simd::Batch;
using simd::copy_row;
using simd::in_register;
using simd::round_up;
using simd::V;
using simd::zero_row;

// Output rows per register block: kRows independent accumulator chains hide the FMA latency (a 16-wide
// plane is one vector per row on AVX-512).
inline constexpr std::size_t kRows = 8;

// One correlation of planes: a source plane [src_h, src_w] placed at (top, left) (negative: cropped) in a
// zero buffer of phase rows, read by kh x kw taps with strides and dilations into [out_h, out_w].
// The buffer's zeros are the same for every plane of a pass: clear() writes them once per thread and chunk
// of planes, fill() then writes only the source values, which land at the same places for every plane.
struct Pass {
  std::size_t src_h, src_w;
  std::ptrdiff_t top, left;
  std::size_t stride_h, stride_w;
  std::size_t out_h, out_w;
  std::size_t grid_w;               // out_w rounded up to V: the computed width
  std::size_t phase, rows;          // floats per phase (of a row), rows of the buffer
  std::vector<std::size_t> taps;    // the buffer offset of tap (i, j) for output (0, 0), [kh*kw]
  std::size_t y0, y1;               // the source rows that land in the buffer
  std::vector<std::size_t> lo, hi;  // per column phase q: [lo[q], hi[q]) of the phase holds source values
  bool rows3;                       // a 3x3 filter, row stride 1 or 2, no row dilation: correlate3x3 applies
  std::size_t row_len() const { return stride_w * phase; }
  std::size_t size() const { return rows * row_len(); }
  std::size_t row_step() const { return stride_h * row_len(); }  // from one output row to the next

  Pass(std::size_t h, std::size_t w, std::ptrdiff_t top_, std::ptrdiff_t left_, std::size_t sh,
       std::size_t sw, std::size_t dh, std::size_t dw, std::size_t kh, std::size_t kw, std::size_t oh,
       std::size_t ow)
      : src_h(h),
        src_w(w),
        top(top_),
        left(left_),
        stride_h(sh),
        stride_w(sw),
        out_h(oh),
        out_w(ow),
        grid_w(round_up(ow, V)),
        phase((kw - 1) * dw / sw + grid_w),       // the last tap's run of grid_w floats fits its phase
        rows((oh - 1) * sh + (kh - 1) * dh + 1),  // every row the outputs read
        rows3(kh == 3 && kw == 3 && dh == 1 && sh <= 2) {
    for (std::size_t i = 0; i < kh; ++i)
      for (std::size_t j = 0; j < kw; ++j)
        taps.push_back(i * dh * row_len() + (j * dw % sw) * phase + j * dw / sw);
    const auto clamp = [](std::ptrdiff_t v, std::ptrdiff_t hi_) {
      return std::clamp<std::ptrdiff_t>(v, 0, hi_);
    };
    y0 = static_cast<std::size_t>(clamp(-top, static_cast<std::ptrdiff_t>(h)));
    y1 = std::max(y0, static_cast<std::size_t>(
                          clamp(static_cast<std::ptrdiff_t>(rows) - top, static_cast<std::ptrdiff_t>(h))));
    // the first index t of a phase whose column t*sw + q - left is >= c
    const auto s = static_cast<std::ptrdiff_t>(sw), len = static_cast<std::ptrdiff_t>(phase);
    const auto first = [&](std::ptrdiff_t c) { return c <= 0 ? 0 : std::min(len, (c + s - 1) / s); };
    for (std::ptrdiff_t q = 0; q < s; ++q) {
      const std::ptrdiff_t t0 = first(left - q),
                           t1 = std::max(t0, first(left - q + static_cast<std::ptrdiff_t>(w)));
      lo.push_back(static_cast<std::size_t>(t0)), hi.push_back(static_cast<std::size_t>(t1));
    }
  }

  void clear(float* buf) const { zero_row(buf, size()); }

  // Writes the source plane's values into a cleared buffer: phase q of buffer row y + top gets source row
  // y's columns t*sw + q - left for t in [lo[q], hi[q]).
  void fill(const float* src, float* buf) const {
    float* row = buf + (y0 + static_cast<std::size_t>(top)) * row_len();
    for (std::size_t y = y0; y < y1; ++y, row += row_len()) {
      const float* s = src + y * src_w - left;  // s[u]: the value of padded column u
      if (stride_w == 1) {
        copy_row(s + lo[0], hi[0] - lo[0], row + lo[0]);
        continue;
      }
      for (std::size_t q = 0; q < stride_w; ++q) {
        const float* from = s + lo[q] * stride_w + q;
        if (stride_w == 2) {
          gather<2>(from, 2, hi[q] - lo[q], row + q * phase + lo[q]);
        } else {
          gather<0>(from, stride_w, hi[q] - lo[q], row + q * phase + lo[q]);
        }
      }
    }
  }

  // dst[t] = src[t * stride] for t < n; S is the stride when known at compile time (2: the compiler
  // vectorizes the loop with shuffles), 0 otherwise.
  template <std::size_t S>
  static void gather(const float* src, std::size_t stride, std::size_t n, float* dst) {
    const std::size_t st = S ? S : stride;
    for (std::size_t t = 0; t < n; ++t) dst[t] = src[t * st];
  }
};

// The loads of the 3x3 filters with row stride SH (1 or 2) and no row dilation (Pass::rows3), for R output
// rows and one vector of columns: output row r reads buffer rows r*SH + i (i < 3), so each input vector is
// loaded once, from `row` (buffer row 0 at that column) plus y*row_len + col[j], and handed to every (output
// row r, tap t = i*3 + j) that reads it: f(r, t, v). (R-1)*SH + 3 rows x 3 loads for 9*R uses (72 loads
// without the sharing, which made the generic loops load-bound). Fully unrolled: r and t are constants in f.
template <std::size_t SH, std::size_t R, class F>
inline void each_3x3_load(const float* row, std::size_t row_len, const std::size_t* col, F&& f) {
  constexpr std::size_t kInRows = (R - 1) * SH + 3;
#pragma GCC unroll 32
  for (std::size_t y = 0; y < kInRows; ++y, row += row_len) {
#pragma GCC unroll 3
    for (std::size_t j = 0; j < 3; ++j) {
      const Batch v = in_register(Batch::load_unaligned(row + col[j]));
#pragma GCC unroll 3
      for (std::size_t i = 0; i < 3; ++i) {
        if (y >= i && (y - i) % SH == 0 && (y - i) / SH < R) f((y - i) / SH, i * 3 + j, v);
      }
    }
  }
}

// Per-thread buffers of a chunk of planes of one pass: the phase buffer (cleared once) and, when out_w is
// not a whole number of vectors, the grid the outputs are computed on before the valid columns are copied.
struct PlaneScratch {
  float* buf;
  float* grid;
  explicit PlaneScratch(const Pass& p)
      : buf(conv_scratch(kPadded, p.size())),
        grid(p.grid_w == p.out_w ? nullptr : conv_scratch(kWide, p.out_h * p.grid_w)) {
    p.clear(buf);
  }
};

// Asks for the next plane while this one is computed: a plane is a few KiB read once, and the copy into the
// buffer otherwise waits for each of its rows in turn.
inline void prefetch_plane(const float* src, std::size_t count) {
  for (std::size_t i = 0; i < count; i += 64 / sizeof(float)) __builtin_prefetch(src + i);
}

inline Pass forward_pass(const Conv2dGeometry& g) {
  return Pass(g.h, g.w, static_cast<std::ptrdiff_t>(g.pad_top), static_cast<std::ptrdiff_t>(g.pad_left),
              g.stride_h, g.stride_w, g.dilation_h, g.dilation_w, g.kh, g.kw, g.h_out, g.w_out);
}

// One plane of the pass: out [out_h][out_w] = bias + the correlation of src with the taps' weights w (the
// forward, and the dx pass with the flipped filters). Defined in conv2d_depthwise_forward.cpp.
void correlate_plane(const float* src, const Pass& p, const float* w, float bias, float* out,
                     const PlaneScratch& s);

}  // namespace tg::depthwise
