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
#include <algorithm>
#include <array>
#include <cstddef>
#include <vector>

#include "core/kernels/conv2d.hpp"
#include "core/kernels/conv2d_scratch.hpp"
#include "core/kernels/simd.hpp"
#include "core/runtime/threads.hpp"

namespace tg {
namespace {

using simd::Batch;
using simd::copy_row;
using simd::in_register;
using simd::round_up;
using simd::sum_row;
using simd::V;
using simd::zero_row;

// Output rows per register block: kRows independent accumulator chains hide the FMA latency (a 16-wide
// plane is one vector per row on AVX-512).
constexpr std::size_t kRows = 8;

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

// R output rows from oh0, all grid_w columns: dst[r * dst_stride + ow] = bias + sum over the taps t of
// w[t] * in[off[t] + r * step + ow], in = the buffer at output row oh0. R accumulator chains per vector.
template <std::size_t R, class Weight>
void correlate_rows(const float* in, std::size_t step, const std::size_t* off, std::size_t taps,
                    const Weight& weight, float bias, std::size_t grid_w, float* dst,
                    std::size_t dst_stride) {
  for (std::size_t ow0 = 0; ow0 < grid_w; ow0 += V) {
    Batch acc[R];
#pragma GCC unroll 8
    for (std::size_t r = 0; r < R; ++r) acc[r] = Batch(bias);
#pragma GCC unroll 9
    for (std::size_t t = 0; t < taps; ++t) {
      const Batch wt = weight(t);
      const float* src = in + off[t] + ow0;
#pragma GCC unroll 8
      for (std::size_t r = 0; r < R; ++r)
        acc[r] = xsimd::fma(wt, Batch::load_unaligned(src + r * step), acc[r]);
    }
#pragma GCC unroll 8
    for (std::size_t r = 0; r < R; ++r) acc[r].store_unaligned(dst + r * dst_stride + ow0);
  }
}

// dst [out_h][grid_w] (rows dst_stride apart) = bias + the correlation of the filled buffer with the taps'
// weights w: blocks of kRows rows, then the remaining rows one by one. T is the tap count when known at
// compile time (9: the 3x3 filters, whose weights then stay in registers), 0 otherwise.
template <std::size_t T>
void correlate(const float* buf, const Pass& p, const float* w, float bias, float* dst,
               std::size_t dst_stride) {
  const std::size_t taps = T ? T : p.taps.size(), step = p.row_step();
  std::array<std::size_t, T ? T : 1> off_fixed{};
  std::array<Batch, T ? T : 1> w_fixed{};
  if constexpr (T > 0) {
    for (std::size_t t = 0; t < T; ++t) off_fixed[t] = p.taps[t], w_fixed[t] = Batch(w[t]);
  }
  const std::size_t* off = T ? off_fixed.data() : p.taps.data();
  auto weight = [&](std::size_t t) {
    if constexpr (T > 0) {
      return w_fixed[t];
    } else {
      return Batch(w[t]);
    }
  };
  std::size_t oh = 0;
  for (; oh + kRows <= p.out_h; oh += kRows)
    correlate_rows<kRows>(buf + oh * step, step, off, taps, weight, bias, p.grid_w, dst + oh * dst_stride,
                          dst_stride);
  for (; oh < p.out_h; ++oh)
    correlate_rows<1>(buf + oh * step, step, off, taps, weight, bias, p.grid_w, dst + oh * dst_stride,
                      dst_stride);
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

// The 3x3 filters, row stride SH (1 or 2), no row dilation: R output rows from the buffer at output row oh0,
// all grid_w columns. Output row r reads buffer rows r*SH + i (i < 3), so each input vector is loaded once
// and used by every output row whose taps reach it: (R-1)*SH + 3 rows x 3 loads for 9*R FMAs (72 loads
// without the sharing, which made the generic loop load-bound). col[j]: tap column j's offset within a buffer
// row.
template <std::size_t SH, std::size_t R>
void correlate3x3_rows(const float* in, std::size_t row_len, const std::size_t* col, const Batch* w,
                       float bias, std::size_t grid_w, float* dst, std::size_t dst_stride) {
  constexpr std::size_t kInRows = (R - 1) * SH + 3;
  for (std::size_t ow0 = 0; ow0 < grid_w; ow0 += V) {
    Batch acc[R];
#pragma GCC unroll 8
    for (std::size_t r = 0; r < R; ++r) acc[r] = Batch(bias);
    const float* row = in + ow0;
#pragma GCC unroll 32
    for (std::size_t y = 0; y < kInRows; ++y, row += row_len) {
#pragma GCC unroll 3
      for (std::size_t j = 0; j < 3; ++j) {
        const Batch v = in_register(Batch::load_unaligned(row + col[j]));
#pragma GCC unroll 3
        for (std::size_t i = 0; i < 3; ++i) {
          if (y >= i && (y - i) % SH == 0 && (y - i) / SH < R) {  // output row (y - i) / SH, tap (i, j)
            acc[(y - i) / SH] = xsimd::fma(w[i * 3 + j], v, acc[(y - i) / SH]);
          }
        }
      }
    }
#pragma GCC unroll 8
    for (std::size_t r = 0; r < R; ++r) acc[r].store_unaligned(dst + r * dst_stride + ow0);
  }
}

// correlate<9> for Pass::rows3: blocks of kRows output rows, then the remaining rows one by one.
template <std::size_t SH>
void correlate3x3(const float* buf, const Pass& p, const float* w, float bias, float* dst,
                  std::size_t dst_stride) {
  std::array<Batch, 9> wv;
  for (std::size_t t = 0; t < 9; ++t) wv[t] = Batch(w[t]);
  const std::size_t col[3] = {p.taps[0], p.taps[1], p.taps[2]}, step = p.row_step();
  std::size_t oh = 0;
  for (; oh + kRows <= p.out_h; oh += kRows)
    correlate3x3_rows<SH, kRows>(buf + oh * step, p.row_len(), col, wv.data(), bias, p.grid_w,
                                 dst + oh * dst_stride, dst_stride);
  for (; oh < p.out_h; ++oh)
    correlate3x3_rows<SH, 1>(buf + oh * step, p.row_len(), col, wv.data(), bias, p.grid_w,
                             dst + oh * dst_stride, dst_stride);
}

// One plane of the pass: out [out_h][out_w] = bias + the correlation of src with the taps' weights w.
void correlate_plane(const float* src, const Pass& p, const float* w, float bias, float* out,
                     const PlaneScratch& s) {
  p.fill(src, s.buf);
  float* dst = s.grid ? s.grid : out;
  const std::size_t dst_stride = s.grid ? p.grid_w : p.out_w;
  if (p.rows3 && p.stride_h == 1) {
    correlate3x3<1>(s.buf, p, w, bias, dst, dst_stride);
  } else if (p.rows3) {
    correlate3x3<2>(s.buf, p, w, bias, dst, dst_stride);
  } else if (p.taps.size() == 9) {
    correlate<9>(s.buf, p, w, bias, dst, dst_stride);
  } else {
    correlate<0>(s.buf, p, w, bias, dst, dst_stride);
  }
  if (s.grid) {
    for (std::size_t oh = 0; oh < p.out_h; ++oh)
      copy_row(s.grid + oh * p.grid_w, p.out_w, out + oh * p.out_w);
  }
}

// Asks for the next plane while this one is computed: a plane is a few KiB read once, and the copy into the
// buffer otherwise waits for each of its rows in turn.
void prefetch_plane(const float* src, std::size_t count) {
  for (std::size_t i = 0; i < count; i += 64 / sizeof(float)) __builtin_prefetch(src + i);
}

Pass forward_pass(const Conv2dGeometry& g) {
  return Pass(g.h, g.w, static_cast<std::ptrdiff_t>(g.pad_top), static_cast<std::ptrdiff_t>(g.pad_left),
              g.stride_h, g.stride_w, g.dilation_h, g.dilation_w, g.kh, g.kw, g.h_out, g.w_out);
}

// dweight's 3x3 filters, row stride SH (1 or 2), no row dilation (Pass::rows3), R output rows from the buffer
// at output row oh0: acc[i*3 + j] += dout row r * tap (i, j)'s input run of row r, i.e. buffer row r*SH + i
// from column col[j]. As in correlate3x3_rows, each input vector is loaded once for every (r, i) that reads
// it.
template <std::size_t SH, std::size_t R>
void dweight3x3_rows(const float* in, std::size_t row_len, const std::size_t* col, const float* d,
                     std::size_t d_stride, std::size_t grid_w, Batch* acc_out) {
  constexpr std::size_t kInRows = (R - 1) * SH + 3;
  std::array<Batch, 9> acc;
  std::copy_n(acc_out, 9, acc.begin());
  for (std::size_t ow0 = 0; ow0 < grid_w; ow0 += V) {
    Batch dv[R];
#pragma GCC unroll 8
    for (std::size_t r = 0; r < R; ++r) dv[r] = in_register(Batch::load_unaligned(d + r * d_stride + ow0));
    const float* row = in + ow0;
#pragma GCC unroll 32
    for (std::size_t y = 0; y < kInRows; ++y, row += row_len) {
#pragma GCC unroll 3
      for (std::size_t j = 0; j < 3; ++j) {
        const Batch v = in_register(Batch::load_unaligned(row + col[j]));
#pragma GCC unroll 3
        for (std::size_t i = 0; i < 3; ++i) {
          if (y >= i && (y - i) % SH == 0 && (y - i) / SH < R) {  // output row (y - i) / SH, tap (i, j)
            acc[i * 3 + j] = xsimd::fma(dv[(y - i) / SH], v, acc[i * 3 + j]);
          }
        }
      }
    }
  }
  std::copy_n(acc.begin(), 9, acc_out);
}

// The whole plane: blocks of kRows output rows, then the remaining rows one by one. d: dout [out_h][grid_w].
template <std::size_t SH>
void dweight3x3(const float* buf, const Pass& p, const float* d, Batch* acc) {
  const std::size_t col[3] = {p.taps[0], p.taps[1], p.taps[2]}, step = p.row_step();
  std::size_t oh = 0;
  for (; oh + kRows <= p.out_h; oh += kRows)
    dweight3x3_rows<SH, kRows>(buf + oh * step, p.row_len(), col, d + oh * p.grid_w, p.grid_w, p.grid_w, acc);
  for (; oh < p.out_h; ++oh)
    dweight3x3_rows<SH, 1>(buf + oh * step, p.row_len(), col, d + oh * p.grid_w, p.grid_w, p.grid_w, acc);
}

// dw[t] = sum over n of the dout plane (zero-padded to the grid's width) times tap t's input run, one
// vector accumulator per tap; dbias = the sum of dout. Channel c of every image.
template <std::size_t T>
void dweight_channel(const float* dout, const float* x, const Conv2dGeometry& g, const Pass& p, std::size_t c,
                     const PlaneScratch& s, float* dweight, float* dbias) {
  const std::size_t taps = T ? T : p.taps.size(), step = p.row_step();
  const std::size_t plane = g.h * g.w, plane_out = g.pixels_out();
  std::array<std::size_t, T ? T : 1> off_fixed{};
  if constexpr (T > 0) std::copy_n(p.taps.begin(), T, off_fixed.begin());
  const std::size_t* off = T ? off_fixed.data() : p.taps.data();
  std::array<Batch, T ? T : 1> acc_fixed{};
  std::vector<Batch> acc_any(T ? 0 : taps, Batch(0.f));
  Batch* acc = T ? acc_fixed.data() : acc_any.data();
  if constexpr (T > 0) acc_fixed.fill(Batch(0.f));
  double bias_sum = 0.0;
  for (std::size_t n = 0; n < g.batch; ++n) {
    const float* dplane = dout + (n * g.c_out + c) * plane_out;
    if (n + 1 < g.batch) {  // the next image's planes are C planes further on
      prefetch_plane(dplane + g.c_out * plane_out, plane_out);
      if (dweight) prefetch_plane(x + ((n + 1) * g.c_in + c) * plane, plane);
    }
    if (dbias) bias_sum += sum_row(dplane, plane_out);
    if (!dweight) continue;
    p.fill(x + (n * g.c_in + c) * plane, s.buf);
    const float* d = dplane;
    if (s.grid) {  // its padding columns stay zero: written once by the caller
      for (std::size_t oh = 0; oh < g.h_out; ++oh)
        copy_row(dplane + oh * g.w_out, g.w_out, s.grid + oh * p.grid_w);
      d = s.grid;
    }
    if constexpr (T == 9) {
      if (p.rows3) {
        if (p.stride_h == 1) {
          dweight3x3<1>(s.buf, p, d, acc);
        } else {
          dweight3x3<2>(s.buf, p, d, acc);
        }
        continue;
      }
    }
    for (std::size_t oh = 0; oh < g.h_out; ++oh) {
      const float* in = s.buf + oh * step;
      for (std::size_t ow0 = 0; ow0 < p.grid_w; ow0 += V) {
        const Batch dv = Batch::load_unaligned(d + oh * p.grid_w + ow0);
#pragma GCC unroll 9
        for (std::size_t t = 0; t < taps; ++t)
          acc[t] = xsimd::fma(dv, Batch::load_unaligned(in + off[t] + ow0), acc[t]);
      }
    }
  }
  if (dweight) {
    for (std::size_t t = 0; t < taps; ++t) dweight[c * taps + t] = xsimd::hadd(acc[t]);
  }
  if (dbias) dbias[c] = static_cast<float>(bias_sum);
}

}  // namespace

// groups = 1 (a one-channel conv) stays with the other kernels, as before grouped convs existed.
bool conv2d_depthwise_applies(const Conv2dGeometry& g) {
  return g.groups > 1 && g.groups == g.c_in && g.c_out == g.c_in;
}

void conv2d_depthwise_forward(const float* x, const float* weight, const float* bias, const Conv2dGeometry& g,
                              float* out) {
  const Pass p = forward_pass(g);
  const std::size_t taps = g.kh * g.kw, plane = g.h * g.w, plane_out = g.pixels_out();
  parallel_for(g.batch * g.c_in, [&](std::size_t b0, std::size_t b1) {
    const PlaneScratch s(p);
    for (std::size_t nc = b0; nc < b1; ++nc) {
      const std::size_t c = nc % g.c_in;
      if (nc + 1 < b1) prefetch_plane(x + (nc + 1) * plane, plane);
      correlate_plane(x + nc * plane, p, weight + c * taps, bias ? bias[c] : 0.f, out + nc * plane_out, s);
    }
  });
}

void conv2d_depthwise_backward(const float* dout, const float* x, const float* weight,
                               const Conv2dGeometry& g, float* dx, float* dweight, float* dbias) {
  const std::size_t taps = g.kh * g.kw, plane = g.h * g.w, plane_out = g.pixels_out();
  if (dx) {
    // dout spread by the stride: [(Hout-1)*sh + 1, (Wout-1)*sw + 1], the stride-1 source of the adjoint.
    const std::size_t up_h = (g.h_out - 1) * g.stride_h + 1, up_w = (g.w_out - 1) * g.stride_w + 1;
    const bool spread = g.stride_h > 1 || g.stride_w > 1;
    const Pass p(
        up_h, up_w,
        static_cast<std::ptrdiff_t>((g.kh - 1) * g.dilation_h) - static_cast<std::ptrdiff_t>(g.pad_top),
        static_cast<std::ptrdiff_t>((g.kw - 1) * g.dilation_w) - static_cast<std::ptrdiff_t>(g.pad_left), 1,
        1, g.dilation_h, g.dilation_w, g.kh, g.kw, g.h, g.w);
    std::vector<float> flipped(g.c_in * taps);  // the filters rotated by 180 degrees
    for (std::size_t c = 0; c < g.c_in; ++c)
      std::reverse_copy(weight + c * taps, weight + (c + 1) * taps,
                        flipped.begin() + static_cast<std::ptrdiff_t>(c * taps));
    parallel_for(g.batch * g.c_in, [&](std::size_t b0, std::size_t b1) {
      const PlaneScratch s(p);
      float* up = spread ? conv_scratch(kOther, up_h * up_w) : nullptr;
      if (spread) std::fill(up, up + up_h * up_w, 0.f);  // the zeros between stay: written once
      for (std::size_t nc = b0; nc < b1; ++nc) {
        const float* src = dout + nc * plane_out;
        if (nc + 1 < b1) prefetch_plane(src + plane_out, plane_out);
        if (spread) {
          for (std::size_t oh = 0; oh < g.h_out; ++oh)
            for (std::size_t ow = 0; ow < g.w_out; ++ow)
              up[oh * g.stride_h * up_w + ow * g.stride_w] = src[oh * g.w_out + ow];
          src = up;
        }
        correlate_plane(src, p, flipped.data() + (nc % g.c_in) * taps, 0.f, dx + nc * plane, s);
      }
    });
  }
  if (dweight || dbias) {
    const Pass p = forward_pass(g);
    parallel_for(g.c_in, [&](std::size_t c0, std::size_t c1) {
      const PlaneScratch s(p);
      if (s.grid) zero_row(s.grid, p.out_h * p.grid_w);
      for (std::size_t c = c0; c < c1; ++c) {
        if (taps == 9) {
          dweight_channel<9>(dout, x, g, p, c, s, dweight, dbias);
        } else {
          dweight_channel<0>(dout, x, g, p, c, s, dweight, dbias);
        }
      }
    });
  }
}

}  // namespace tg
