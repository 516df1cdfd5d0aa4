// Average pooling kernels (zero padding counted in the divisor, as PyTorch's default), the global average,
// and the plain reference they are tested against.
#include "core/kernels/avg_pool2d.hpp"

#include <algorithm>
#include <vector>

#include "core/kernels/simd.hpp"
#include "core/runtime/threads.hpp"

namespace tg {
namespace {

// Planes per thread below which a loop stays on one thread: enough planes for kElementGrain input cells
// (waking a worker costs more than pooling a few small planes).
std::size_t plane_grain(std::size_t plane_size) {
  return std::max<std::size_t>(1, kElementGrain / std::max<std::size_t>(plane_size, 1));
}

// The rows [begin, end) of the image that window row `o` covers: clipped to the image, since padded cells
// are zeros (they only count in the divisor).
struct Span {
  std::size_t begin, end;
};
Span window_span(std::size_t o, std::size_t stride, std::size_t pad, std::size_t k, std::size_t size) {
  const auto start = static_cast<std::ptrdiff_t>(o * stride) - static_cast<std::ptrdiff_t>(pad);
  const auto stop = std::min(start + static_cast<std::ptrdiff_t>(k), static_cast<std::ptrdiff_t>(size));
  return {static_cast<std::size_t>(std::max<std::ptrdiff_t>(start, 0)),
          static_cast<std::size_t>(std::max<std::ptrdiff_t>(stop, 0))};
}

// 2x2 windows, stride 2, no padding (the usual downsampling): each output reads two input rows.
void avg_pool2d_rows_forward_2x2(const float* x, const Pool2dGeometry& g, float* out, std::size_t p0,
                                 std::size_t p1) {
  for (std::size_t p = p0; p < p1; ++p) {
    for (std::size_t oh = 0; oh < g.h_out; ++oh) {
      const float* top = x + (p * g.h + 2 * oh) * g.w;
      const float* bottom = top + g.w;
      float* o = out + (p * g.h_out + oh) * g.w_out;
      for (std::size_t ow = 0; ow < g.w_out; ++ow) {
        o[ow] = (top[2 * ow] + top[2 * ow + 1] + bottom[2 * ow] + bottom[2 * ow + 1]) / 4.f;
      }
    }
  }
}

// Any window: the sum over the window's rows of whole image rows first (contiguous, vectorized), then each
// output adds its kw columns of that row sum.
void avg_pool2d_rows_forward_general(const float* x, const Pool2dGeometry& g, float* out, std::size_t p0,
                                     std::size_t p1) {
  const auto divisor = static_cast<float>(g.kh * g.kw);
  std::vector<float> row_sum(g.w);
  for (std::size_t p = p0; p < p1; ++p) {
    const float* in = x + p * g.h * g.w;
    for (std::size_t oh = 0; oh < g.h_out; ++oh) {
      const Span rows = window_span(oh, g.stride_h, g.pad_h, g.kh, g.h);
      std::fill(row_sum.begin(), row_sum.end(), 0.f);
      for (std::size_t ih = rows.begin; ih < rows.end; ++ih) {
        const float* r = in + ih * g.w;
        for (std::size_t iw = 0; iw < g.w; ++iw) row_sum[iw] += r[iw];
      }
      float* o = out + (p * g.h_out + oh) * g.w_out;
      for (std::size_t ow = 0; ow < g.w_out; ++ow) {
        const Span cols = window_span(ow, g.stride_w, g.pad_w, g.kw, g.w);
        float s = 0.f;
        for (std::size_t iw = cols.begin; iw < cols.end; ++iw) s += row_sum[iw];
        o[ow] = s / divisor;
      }
    }
  }
}

// 2x2 stride 2 without padding: each dout / 4 goes to its four cells; the row and column that floor sizes
// drop (odd H or W) get zeros.
void avg_pool2d_rows_backward_2x2(const float* dout, const Pool2dGeometry& g, float* dx, std::size_t p0,
                                  std::size_t p1) {
  for (std::size_t p = p0; p < p1; ++p) {
    float* plane = dx + p * g.h * g.w;
    for (std::size_t oh = 0; oh < g.h_out; ++oh) {
      float* top = plane + 2 * oh * g.w;
      float* bottom = top + g.w;
      const float* d = dout + (p * g.h_out + oh) * g.w_out;
      for (std::size_t ow = 0; ow < g.w_out; ++ow) {
        const float v = d[ow] / 4.f;
        top[2 * ow] = top[2 * ow + 1] = bottom[2 * ow] = bottom[2 * ow + 1] = v;
      }
      for (std::size_t iw = 2 * g.w_out; iw < g.w; ++iw) top[iw] = bottom[iw] = 0.f;
    }
    std::fill(plane + 2 * g.h_out * g.w, plane + g.h * g.w, 0.f);
  }
}

// Any window: each output row spreads its gradients over one image-wide row (dout / divisor on the kw
// columns of each window), which is then added to the window's kh image rows (contiguous, vectorized).
void avg_pool2d_rows_backward_general(const float* dout, const Pool2dGeometry& g, float* dx, std::size_t p0,
                                      std::size_t p1) {
  const auto divisor = static_cast<float>(g.kh * g.kw);
  std::vector<float> row_grad(g.w);
  std::fill(dx + p0 * g.h * g.w, dx + p1 * g.h * g.w, 0.f);
  for (std::size_t p = p0; p < p1; ++p) {
    float* plane = dx + p * g.h * g.w;
    for (std::size_t oh = 0; oh < g.h_out; ++oh) {
      std::fill(row_grad.begin(), row_grad.end(), 0.f);
      const float* d = dout + (p * g.h_out + oh) * g.w_out;
      for (std::size_t ow = 0; ow < g.w_out; ++ow) {
        const Span cols = window_span(ow, g.stride_w, g.pad_w, g.kw, g.w);
        const float v = d[ow] / divisor;
        for (std::size_t iw = cols.begin; iw < cols.end; ++iw) row_grad[iw] += v;
      }
      const Span rows = window_span(oh, g.stride_h, g.pad_h, g.kh, g.h);
      for (std::size_t ih = rows.begin; ih < rows.end; ++ih) {
        float* r = plane + ih * g.w;
        for (std::size_t iw = 0; iw < g.w; ++iw) r[iw] += row_grad[iw];
      }
    }
  }
}

bool is_2x2_stride_2(const Pool2dGeometry& g) {
  return g.kh == 2 && g.kw == 2 && g.stride_h == 2 && g.stride_w == 2 && g.pad_h == 0 && g.pad_w == 0;
}

}  // namespace

void avg_pool2d_rows_forward(const float* x, const Pool2dGeometry& g, float* out) {
  const auto kernel = is_2x2_stride_2(g) ? avg_pool2d_rows_forward_2x2 : avg_pool2d_rows_forward_general;
  parallel_for(
      g.planes, [&](std::size_t p0, std::size_t p1) { kernel(x, g, out, p0, p1); }, plane_grain(g.h * g.w));
}

void avg_pool2d_rows_backward(const float* dout, const Pool2dGeometry& g, float* dx) {
  const auto kernel = is_2x2_stride_2(g) ? avg_pool2d_rows_backward_2x2 : avg_pool2d_rows_backward_general;
  parallel_for(
      g.planes, [&](std::size_t p0, std::size_t p1) { kernel(dout, g, dx, p0, p1); }, plane_grain(g.h * g.w));
}

// Every cell (i, j) of every window over the padded input: those outside the image are zeros, and every cell
// counts in the divisor.
void avg_pool2d_reference_forward(const float* x, const Pool2dGeometry& g, float* out) {
  for (std::size_t p = 0; p < g.planes; ++p)
    for (std::size_t oh = 0; oh < g.h_out; ++oh)
      for (std::size_t ow = 0; ow < g.w_out; ++ow) {
        float sum = 0.f;
        for (std::size_t i = 0; i < g.kh; ++i)
          for (std::size_t j = 0; j < g.kw; ++j) {
            const std::ptrdiff_t index = g.cell(oh, ow, i, j);
            if (index < 0) continue;
            sum += x[p * g.h * g.w + static_cast<std::size_t>(index)];
          }
        out[(p * g.h_out + oh) * g.w_out + ow] = sum / static_cast<float>(g.kh * g.kw);
      }
}

void avg_pool2d_reference_backward(const float* dout, const Pool2dGeometry& g, float* dx) {
  std::fill(dx, dx + g.planes * g.h * g.w, 0.f);
  for (std::size_t p = 0; p < g.planes; ++p)
    for (std::size_t oh = 0; oh < g.h_out; ++oh)
      for (std::size_t ow = 0; ow < g.w_out; ++ow) {
        const float v = dout[(p * g.h_out + oh) * g.w_out + ow] / static_cast<float>(g.kh * g.kw);
        for (std::size_t i = 0; i < g.kh; ++i)
          for (std::size_t j = 0; j < g.kw; ++j) {
            const std::ptrdiff_t index = g.cell(oh, ow, i, j);
            if (index < 0) continue;
            dx[p * g.h * g.w + static_cast<std::size_t>(index)] += v;
          }
      }
}

void global_avg_pool2d_simd_forward(const float* x, std::size_t planes, std::size_t plane_size, float* out) {
  parallel_for(
      planes,
      [&](std::size_t p0, std::size_t p1) {
        for (std::size_t p = p0; p < p1; ++p)
          out[p] = static_cast<float>(simd::sum_row(x + p * plane_size, plane_size) /
                                      static_cast<double>(plane_size));
      },
      plane_grain(plane_size));
}

void global_avg_pool2d_simd_backward(const float* dout, std::size_t planes, std::size_t plane_size,
                                     float* dx) {
  parallel_for(
      planes,
      [&](std::size_t p0, std::size_t p1) {
        for (std::size_t p = p0; p < p1; ++p) {
          std::fill(dx + p * plane_size, dx + (p + 1) * plane_size, dout[p] / static_cast<float>(plane_size));
        }
      },
      plane_grain(plane_size));
}

}  // namespace tg
