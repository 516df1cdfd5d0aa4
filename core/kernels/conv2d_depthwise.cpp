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
// checks (the padding is in the buffer). Outputs are computed on a grid rounded up to whole register blocks
// (kRows rows x whole vectors) and the valid part copied out, so no loop has a scalar tail.
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
#include "core/kernels/conv2d_direct_common.hpp"
#include "core/kernels/conv2d_scratch.hpp"
#include "core/runtime/threads.hpp"

namespace tg {
namespace {

using direct::Batch;
using direct::copy_row;
using direct::round_up;
using direct::V;
using direct::zero_row;

// Output rows per register block: kRows independent accumulator chains hide the FMA latency (a 16-wide
// plane is one vector per row on AVX-512).
constexpr std::size_t kRows = 8;

// One correlation of planes: a source plane [src_h, src_w] placed at (top, left) (negative: cropped) in a
// zero buffer of phase rows, read by kh x kw taps with strides and dilations into [out_h, out_w].
struct Pass {
  std::size_t src_h, src_w;
  std::ptrdiff_t top, left;
  std::size_t stride_h, stride_w;
  std::size_t out_h, out_w;
  std::size_t grid_h, grid_w;     // out_h rounded up to kRows, out_w to V: the computed grid
  std::size_t phase, rows;        // floats per phase (of a row), rows of the buffer
  std::vector<std::size_t> taps;  // the buffer offset of tap (i, j) for output (0, 0), [kh*kw]
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
        grid_h(round_up(oh, kRows)),
        grid_w(round_up(ow, V)),
        phase((kw - 1) * dw / sw + grid_w),            // the last tap's run of grid_w floats fits its phase
        rows((grid_h - 1) * sh + (kh - 1) * dh + 1) {  // every row the grid reads
    for (std::size_t i = 0; i < kh; ++i)
      for (std::size_t j = 0; j < kw; ++j)
        taps.push_back(i * dh * row_len() + (j * dw % sw) * phase + j * dw / sw);
  }

  // Writes the whole buffer: the source plane's values where they fall, zeros elsewhere.
  void fill(const float* src, float* buf) const {
    const auto sw = static_cast<std::ptrdiff_t>(stride_w), w = static_cast<std::ptrdiff_t>(src_w);
    const auto len = static_cast<std::ptrdiff_t>(phase);
    // the first index t of a phase whose column t*sw + q - left is >= c
    auto first = [&](std::ptrdiff_t c) { return c <= 0 ? 0 : std::min(len, (c + sw - 1) / sw); };
    for (std::size_t r = 0; r < rows; ++r) {
      float* row = buf + r * row_len();
      const std::ptrdiff_t y = static_cast<std::ptrdiff_t>(r) - top;
      if (y < 0 || y >= static_cast<std::ptrdiff_t>(src_h)) {
        zero_row(row, row_len());
        continue;
      }
      const float* s = src + static_cast<std::size_t>(y) * src_w;
      for (std::ptrdiff_t q = 0; q < sw; ++q) {
        float* p = row + q * len;
        const std::ptrdiff_t t0 = first(left - q), t1 = std::max(t0, first(left - q + w));
        zero_row(p, static_cast<std::size_t>(t0));
        if (sw == 1) {
          copy_row(s + (t0 - left), static_cast<std::size_t>(t1 - t0), p + t0);
        } else {
          for (std::ptrdiff_t t = t0; t < t1; ++t) p[t] = s[t * sw + q - left];
        }
        zero_row(p + t1, static_cast<std::size_t>(len - t1));
      }
    }
  }
};

// grid [grid_h][grid_w] = bias + the correlation of the filled buffer with the taps' weights w. T is the tap
// count when known at compile time (9: the 3x3 filters, whose weights then stay in registers), 0 otherwise.
template <std::size_t T>
void correlate(const float* buf, const Pass& p, const float* w, float bias, float* grid) {
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
  for (std::size_t oh0 = 0; oh0 < p.grid_h; oh0 += kRows) {
    const float* in = buf + oh0 * step;
    for (std::size_t ow0 = 0; ow0 < p.grid_w; ow0 += V) {
      Batch acc[kRows];
#pragma GCC unroll 8
      for (std::size_t r = 0; r < kRows; ++r) acc[r] = Batch(bias);
#pragma GCC unroll 9
      for (std::size_t t = 0; t < taps; ++t) {
        const Batch wt = weight(t);
        const float* src = in + off[t] + ow0;
#pragma GCC unroll 8
        for (std::size_t r = 0; r < kRows; ++r)
          acc[r] = xsimd::fma(wt, Batch::load_unaligned(src + r * step), acc[r]);
      }
#pragma GCC unroll 8
      for (std::size_t r = 0; r < kRows; ++r) acc[r].store_unaligned(grid + (oh0 + r) * p.grid_w + ow0);
    }
  }
}

// One plane of the pass: out [out_h][out_w] = bias + the correlation of src with the taps' weights w.
void correlate_plane(const float* src, const Pass& p, const float* w, float bias, float* out) {
  float* buf = conv_scratch(kPadded, p.size());
  float* grid = conv_scratch(kWide, p.grid_h * p.grid_w);
  p.fill(src, buf);
  if (p.taps.size() == 9) {
    correlate<9>(buf, p, w, bias, grid);
  } else {
    correlate<0>(buf, p, w, bias, grid);
  }
  for (std::size_t oh = 0; oh < p.out_h; ++oh) copy_row(grid + oh * p.grid_w, p.out_w, out + oh * p.out_w);
}

Pass forward_pass(const Conv2dGeometry& g) {
  return Pass(g.h, g.w, static_cast<std::ptrdiff_t>(g.pad_top), static_cast<std::ptrdiff_t>(g.pad_left),
              g.stride_h, g.stride_w, g.dilation_h, g.dilation_w, g.kh, g.kw, g.h_out, g.w_out);
}

// dw[t] = sum over n of the dout plane (zero-padded to the grid's width, gd) times tap t's input run, one
// vector accumulator per tap; dbias = the sum of dout. Channel c of every image.
template <std::size_t T>
void dweight_channel(const float* dout, const float* x, const Conv2dGeometry& g, const Pass& p, std::size_t c,
                     float* dweight, float* dbias) {
  const std::size_t taps = T ? T : p.taps.size(), step = p.row_step();
  const std::size_t plane = g.h * g.w, plane_out = g.pixels_out();
  std::array<std::size_t, T ? T : 1> off_fixed{};
  if constexpr (T > 0) std::copy_n(p.taps.begin(), T, off_fixed.begin());
  const std::size_t* off = T ? off_fixed.data() : p.taps.data();
  std::array<Batch, T ? T : 1> acc_fixed{};
  std::vector<Batch> acc_any(T ? 0 : taps, Batch(0.f));
  Batch* acc = T ? acc_fixed.data() : acc_any.data();
  if constexpr (T > 0) acc_fixed.fill(Batch(0.f));
  float* buf = conv_scratch(kPadded, p.size());
  float* d = conv_scratch(kWide, g.h_out * p.grid_w);
  double bias_sum = 0.0;
  for (std::size_t n = 0; n < g.batch; ++n) {
    const float* dplane = dout + (n * g.c_out + c) * plane_out;
    if (dbias) bias_sum += sum_row(dplane, plane_out);
    if (!dweight) continue;
    p.fill(x + (n * g.c_in + c) * plane, buf);
    for (std::size_t oh = 0; oh < g.h_out; ++oh) {
      copy_row(dplane + oh * g.w_out, g.w_out, d + oh * p.grid_w);
      zero_row(d + oh * p.grid_w + g.w_out, p.grid_w - g.w_out);
    }
    for (std::size_t oh = 0; oh < g.h_out; ++oh) {
      const float* in = buf + oh * step;
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
    for (std::size_t nc = b0; nc < b1; ++nc) {
      const std::size_t c = nc % g.c_in;
      correlate_plane(x + nc * plane, p, weight + c * taps, bias ? bias[c] : 0.f, out + nc * plane_out);
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
      float* up = spread ? conv_scratch(kOther, up_h * up_w) : nullptr;
      for (std::size_t nc = b0; nc < b1; ++nc) {
        const float* src = dout + nc * plane_out;
        if (spread) {
          std::fill(up, up + up_h * up_w, 0.f);
          for (std::size_t oh = 0; oh < g.h_out; ++oh)
            for (std::size_t ow = 0; ow < g.w_out; ++ow)
              up[oh * g.stride_h * up_w + ow * g.stride_w] = src[oh * g.w_out + ow];
          src = up;
        }
        correlate_plane(src, p, flipped.data() + (nc % g.c_in) * taps, 0.f, dx + nc * plane);
      }
    });
  }
  if (dweight || dbias) {
    const Pass p = forward_pass(g);
    parallel_for(g.c_in, [&](std::size_t c0, std::size_t c1) {
      for (std::size_t c = c0; c < c1; ++c) {
        if (taps == 9) {
          dweight_channel<9>(dout, x, g, p, c, dweight, dbias);
        } else {
          dweight_channel<0>(dout, x, g, p, c, dweight, dbias);
        }
      }
    });
  }
}

}  // namespace tg
