// The depthwise convolution forward (groups = Cin = Cout): each (n, c) plane correlated with its channel's
// filter through the phase buffer of conv2d_depthwise_common.hpp, planes in parallel. The correlation loops
// here (correlate_plane) serve the backward's dx pass too.
#include <array>
#include <cstddef>

#include "core/kernels/conv2d.hpp"
#include "core/kernels/conv2d_depthwise_common.hpp"
#include "core/kernels/conv2d_scratch.hpp"
#include "core/runtime/threads.hpp"

namespace tg {
namespace depthwise {
namespace {

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

// The 3x3 filters, row stride SH (1 or 2), no row dilation: R output rows from the buffer at output row oh0,
// all grid_w columns, each input vector loaded once for all the rows that read it (each_3x3_load). col[j]:
// tap column j's offset within a buffer row.
template <std::size_t SH, std::size_t R>
void correlate3x3_rows(const float* in, std::size_t row_len, const std::size_t* col, const Batch* w,
                       float bias, std::size_t grid_w, float* dst, std::size_t dst_stride) {
  for (std::size_t ow0 = 0; ow0 < grid_w; ow0 += V) {
    Batch acc[R];
#pragma GCC unroll 8
    for (std::size_t r = 0; r < R; ++r) acc[r] = Batch(bias);
    each_3x3_load<SH, R>(in + ow0, row_len, col, [&](std::size_t r, std::size_t t, const Batch& v) {
      acc[r] = xsimd::fma(w[t], v, acc[r]);
    });
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

}  // namespace

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

}  // namespace depthwise

// groups = 1 (a one-channel conv) stays with the other kernels, as before grouped convs existed.
bool conv2d_depthwise_applies(const Conv2dGeometry& g) {
  return g.groups > 1 && g.groups == g.c_in && g.c_out == g.c_in;
}

void conv2d_depthwise_forward(const float* x, const float* weight, const float* bias, const Conv2dGeometry& g,
                              float* out) {
  const depthwise::Pass p = depthwise::forward_pass(g);
  const std::size_t taps = g.kh * g.kw, plane = g.h * g.w, plane_out = g.pixels_out();
  // planes per chunk: a thread gets at least kMinSplitMacsPerThread multiply-adds (batch 1: one thread)
  const auto grain =
      static_cast<std::size_t>(kMinSplitMacsPerThread / static_cast<double>(taps * plane_out)) + 1;
  parallel_for(
      g.batch * g.c_in,
      [&](std::size_t b0, std::size_t b1) {
        const depthwise::PlaneScratch s(p);
        for (std::size_t nc = b0; nc < b1; ++nc) {
          const std::size_t c = nc % g.c_in;
          if (nc + 1 < b1) depthwise::prefetch_plane(x + (nc + 1) * plane, plane);
          depthwise::correlate_plane(x + nc * plane, p, weight + c * taps, bias ? bias[c] : 0.f,
                                     out + nc * plane_out, s);
        }
      },
      grain);
}

}  // namespace tg
