// The depthwise convolution backward (groups = Cin = Cout), through the phase buffer of
// conv2d_depthwise_common.hpp: dx as the correlation of dout with the flipped filters (correlate_plane, per
// (n, c) plane in parallel), dweight and dbias per channel in parallel.
#include <algorithm>
#include <array>
#include <cstddef>
#include <vector>

#include "core/kernels/conv2d.hpp"
#include "core/kernels/conv2d_depthwise_common.hpp"
#include "core/kernels/conv2d_scratch.hpp"
#include "core/runtime/threads.hpp"

namespace tg {
namespace depthwise {
namespace {

using simd::sum_row;

// dweight's 3x3 filters, row stride SH (1 or 2), no row dilation (Pass::rows3), R output rows from the buffer
// at output row oh0: acc[i*3 + j] += dout row r * tap (i, j)'s input run of row r, i.e. buffer row r*SH + i
// from column col[j]; each input vector loaded once for every (r, i) that reads it (each_3x3_load).
template <std::size_t SH, std::size_t R>
void dweight3x3_rows(const float* in, std::size_t row_len, const std::size_t* col, const float* d,
                     std::size_t d_stride, std::size_t grid_w, Batch* acc_out) {
  std::array<Batch, 9> acc;
  std::copy_n(acc_out, 9, acc.begin());
  for (std::size_t ow0 = 0; ow0 < grid_w; ow0 += V) {
    Batch dv[R];
#pragma GCC unroll 8
    for (std::size_t r = 0; r < R; ++r) dv[r] = in_register(Batch::load_unaligned(d + r * d_stride + ow0));
    each_3x3_load<SH, R>(in + ow0, row_len, col, [&](std::size_t r, std::size_t t, const Batch& v) {
      acc[t] = xsimd::fma(dv[r], v, acc[t]);
    });
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
}  // namespace depthwise

void conv2d_depthwise_backward(const float* dout, const float* x, const float* weight,
                               const Conv2dGeometry& g, float* dx, float* dweight, float* dbias) {
  const std::size_t taps = g.kh * g.kw, plane = g.h * g.w, plane_out = g.pixels_out();
  if (dx) {
    // dout spread by the stride: [(Hout-1)*sh + 1, (Wout-1)*sw + 1], the stride-1 source of the adjoint.
    const std::size_t up_h = (g.h_out - 1) * g.stride_h + 1, up_w = (g.w_out - 1) * g.stride_w + 1;
    const bool spread = g.stride_h > 1 || g.stride_w > 1;
    const depthwise::Pass p(
        up_h, up_w,
        static_cast<std::ptrdiff_t>((g.kh - 1) * g.dilation_h) - static_cast<std::ptrdiff_t>(g.pad_top),
        static_cast<std::ptrdiff_t>((g.kw - 1) * g.dilation_w) - static_cast<std::ptrdiff_t>(g.pad_left), 1,
        1, g.dilation_h, g.dilation_w, g.kh, g.kw, g.h, g.w);
    std::vector<float> flipped(g.c_in * taps);  // the filters rotated by 180 degrees
    for (std::size_t c = 0; c < g.c_in; ++c)
      std::reverse_copy(weight + c * taps, weight + (c + 1) * taps,
                        flipped.begin() + static_cast<std::ptrdiff_t>(c * taps));
    parallel_for(g.batch * g.c_in, [&](std::size_t b0, std::size_t b1) {
      const depthwise::PlaneScratch s(p);
      float* up = spread ? conv_scratch(kOther, up_h * up_w) : nullptr;
      if (spread) std::fill(up, up + up_h * up_w, 0.f);  // the zeros between stay: written once
      for (std::size_t nc = b0; nc < b1; ++nc) {
        const float* src = dout + nc * plane_out;
        if (nc + 1 < b1) depthwise::prefetch_plane(src + plane_out, plane_out);
        if (spread) {
          for (std::size_t oh = 0; oh < g.h_out; ++oh)
            for (std::size_t ow = 0; ow < g.w_out; ++ow)
              up[oh * g.stride_h * up_w + ow * g.stride_w] = src[oh * g.w_out + ow];
          src = up;
        }
        depthwise::correlate_plane(src, p, flipped.data() + (nc % g.c_in) * taps, 0.f, dx + nc * plane, s);
      }
    });
  }
  if (dweight || dbias) {
    const depthwise::Pass p = depthwise::forward_pass(g);
    parallel_for(g.c_in, [&](std::size_t c0, std::size_t c1) {
      const depthwise::PlaneScratch s(p);
      if (s.grid) simd::zero_row(s.grid, p.out_h * p.grid_w);
      for (std::size_t c = c0; c < c1; ++c) {
        if (taps == 9) {
          depthwise::dweight_channel<9>(dout, x, g, p, c, s, dweight, dbias);
        } else {
          depthwise::dweight_channel<0>(dout, x, g, p, c, s, dweight, dbias);
        }
      }
    });
  }
}

}  // namespace tg
