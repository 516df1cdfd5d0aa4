// im2col + SGEMM convolution, any stride, padding and dilation: the image's patches become the columns of a
// matrix [Cin*Kh*Kw, Hout*Wout], and the conv is one SGEMM with the weights [Cout, Cin*Kh*Kw].
#include <algorithm>
#include <vector>

#include "core/kernels/blas.hpp"
#include "core/kernels/conv2d.hpp"
#include "core/kernels/conv2d_scratch.hpp"
#include "core/kernels/simd.hpp"
#include "core/runtime/threads.hpp"

namespace tg {
namespace {

// The outputs o in [0, n_out) whose input coordinate o*stride + offset lies in [0, n_in): [first, last).
void valid_range(std::ptrdiff_t offset, std::size_t stride, std::size_t n_in, std::size_t n_out,
                 std::size_t& first, std::size_t& last) {
  const auto s = static_cast<std::ptrdiff_t>(stride), in = static_cast<std::ptrdiff_t>(n_in);
  const auto out = static_cast<std::ptrdiff_t>(n_out);
  const std::ptrdiff_t lo = offset >= 0 ? 0 : (-offset + s - 1) / s;  // first o with coordinate >= 0
  const std::ptrdiff_t hi =
      in - offset <= 0 ? 0 : (in - offset + s - 1) / s;  // first o with coordinate >= n_in
  first = static_cast<std::size_t>(std::min(lo, out));
  last = static_cast<std::size_t>(std::clamp(hi, std::min(lo, out), out));
}

}  // namespace

// cols[(c*Kh + i)*Kw + j][oh*Wout + ow] = x[c][oh*sh - pad_top + i*dh][ow*sw - pad_left + j*dw], 0 outside.
// For each row (c, i, j) the valid output rows [oh0, oh1) and columns [ow0, ow1) are computed once; inside
// them every element is a plain copy (contiguous when stride_w = 1), outside them zeros.
void im2col(const float* x, const Conv2dGeometry& g, float* cols, std::size_t row_stride) {
  const std::size_t hw = g.pixels_out(), w_out = g.w_out, sw = g.stride_w;
  for (std::size_t c = 0; c < g.c_in; ++c) {
    const float* plane = x + c * g.h * g.w;
    for (std::size_t i = 0; i < g.kh; ++i) {
      const auto ih0 = static_cast<std::ptrdiff_t>(i * g.dilation_h) - static_cast<std::ptrdiff_t>(g.pad_top);
      std::size_t oh0 = 0, oh1 = 0;
      valid_range(ih0, g.stride_h, g.h, g.h_out, oh0, oh1);
      for (std::size_t j = 0; j < g.kw; ++j) {
        float* out = cols + ((c * g.kh + i) * g.kw + j) * row_stride;  // this image's [Hout, Wout] block
        const auto iw0 =
            static_cast<std::ptrdiff_t>(j * g.dilation_w) - static_cast<std::ptrdiff_t>(g.pad_left);
        std::size_t ow0 = 0, ow1 = 0;
        valid_range(iw0, sw, g.w, w_out, ow0, ow1);
        std::fill(out, out + oh0 * w_out, 0.f);
        for (std::size_t oh = oh0; oh < oh1; ++oh) {
          float* dst = out + oh * w_out;
          const float* src =
              plane + static_cast<std::size_t>(static_cast<std::ptrdiff_t>(oh * g.stride_h) + ih0) * g.w;
          for (std::size_t ow = 0; ow < ow0; ++ow) dst[ow] = 0.f;
          if (sw == 1) {
            for (std::size_t ow = ow0; ow < ow1; ++ow) dst[ow] = src[static_cast<std::ptrdiff_t>(ow) + iw0];
          } else {
            for (std::size_t ow = ow0; ow < ow1; ++ow)
              dst[ow] = src[static_cast<std::ptrdiff_t>(ow * sw) + iw0];
          }
          for (std::size_t ow = ow1; ow < w_out; ++ow) dst[ow] = 0.f;
        }
        std::fill(out + oh1 * w_out, out + hw, 0.f);
      }
    }
  }
}

// The adjoint of im2col: every column entry adds into the input pixel it was copied from.
void col2im(const float* cols, const Conv2dGeometry& g, float* dx, std::size_t row_stride) {
  const std::size_t w_out = g.w_out, sw = g.stride_w;
  for (std::size_t c = 0; c < g.c_in; ++c) {
    float* plane = dx + c * g.h * g.w;
    for (std::size_t i = 0; i < g.kh; ++i) {
      const auto ih0 = static_cast<std::ptrdiff_t>(i * g.dilation_h) - static_cast<std::ptrdiff_t>(g.pad_top);
      std::size_t oh0 = 0, oh1 = 0;
      valid_range(ih0, g.stride_h, g.h, g.h_out, oh0, oh1);
      for (std::size_t j = 0; j < g.kw; ++j) {
        const float* in = cols + ((c * g.kh + i) * g.kw + j) * row_stride;
        const auto iw0 =
            static_cast<std::ptrdiff_t>(j * g.dilation_w) - static_cast<std::ptrdiff_t>(g.pad_left);
        std::size_t ow0 = 0, ow1 = 0;
        valid_range(iw0, sw, g.w, w_out, ow0, ow1);
        for (std::size_t oh = oh0; oh < oh1; ++oh) {
          const float* src = in + oh * w_out;
          float* dst =
              plane + static_cast<std::size_t>(static_cast<std::ptrdiff_t>(oh * g.stride_h) + ih0) * g.w;
          if (sw == 1) {
            for (std::size_t ow = ow0; ow < ow1; ++ow) dst[static_cast<std::ptrdiff_t>(ow) + iw0] += src[ow];
          } else {
            for (std::size_t ow = ow0; ow < ow1; ++ow)
              dst[static_cast<std::ptrdiff_t>(ow * sw) + iw0] += src[ow];
          }
        }
      }
    }
  }
}

namespace {

// Images that go through im2col + SGEMM together: enough for a wide GEMM, few enough that the columns
// (K x images*HW floats) stay in the L2 cache between im2col writing them and SGEMM reading them. Tuned apart
// from the direct backward's chunk (kDirectBackwardChunkBytes, 512 KiB): SGEMM's own packed copies of its
// operands share the cache with the columns here.
constexpr std::size_t kIm2colChunkBytes = 384 * 1024;

std::size_t images_per_chunk(const Conv2dGeometry& g) {
  const std::size_t per_image = g.patch() * g.pixels_out() * sizeof(float);
  return std::clamp<std::size_t>(kIm2colChunkBytes / std::max<std::size_t>(per_image, 1), 1,
                                 std::max<std::size_t>(g.batch, 1));
}

}  // namespace

// Chunks of images in parallel over tapegrad's threads; per chunk of m images, with this thread's buffers:
//   cols [K, m*HW] = im2col of the m images side by side;  Y [Cout, m*HW] = weight [Cout, K] x cols;
//   out[n][o][p] = Y[o][(n - first)*HW + p] + bias[o]
namespace {

// bf16: the products by sgemm_bf16 (bf16 mixed precision), else sgemm.
void im2col_forward(const float* x, const float* weight, const float* bias, const Conv2dGeometry& g,
                    float* out, bool bf16) {
  const auto gemm = bf16 ? sgemm_bf16 : sgemm;
  const std::size_t k = g.patch(), hw = g.pixels_out();
  const std::size_t in_size = g.c_in * g.h * g.w, out_size = g.c_out * hw;
  const std::size_t chunk = images_per_chunk(g), chunks = (g.batch + chunk - 1) / chunk;
  parallel_for(chunks, [&](std::size_t c0, std::size_t c1) {
    for (std::size_t c = c0; c < c1; ++c) {
      const std::size_t n0 = c * chunk, n1 = std::min(g.batch, n0 + chunk), width = (n1 - n0) * hw;
      float* cols = conv_scratch(kColumns, k * width);
      float* y = conv_scratch(kProducts, g.c_out * width);
      for (std::size_t n = n0; n < n1; ++n) im2col(x + n * in_size, g, cols + (n - n0) * hw, width);
      gemm(false, false, g.c_out, width, k, 1.f, weight, cols, 0.f, y);
      for (std::size_t n = n0; n < n1; ++n) {
        for (std::size_t o = 0; o < g.c_out; ++o) {
          const float* src = y + o * width + (n - n0) * hw;
          float* dst = out + n * out_size + o * hw;
          const float b = bias ? bias[o] : 0.f;
          for (std::size_t p = 0; p < hw; ++p) dst[p] = src[p] + b;
        }
      }
    }
  });
}

// The same chunks, split into one contiguous part per thread. Per chunk, with dY [Cout, m*HW] gathered from
// dout and cols = im2col of the chunk [K, m*HW]:
//   dbias[o] += sum of row o of dY ;  dweight [Cout, K] += dY cols^T ;
//   dcols [K, m*HW] = weight^T dY, then dx = col2im(dcols) image by image.
// Each part accumulates its own dweight and dbias; the parts are added in order at the end, so results
// depend only on the thread count.
void im2col_backward(const float* dout, const float* x, const float* weight, const Conv2dGeometry& g,
                     float* dx, float* dweight, float* dbias, bool bf16) {
  const auto gemm = bf16 ? sgemm_bf16 : sgemm;
  const std::size_t k = g.patch(), hw = g.pixels_out();
  const std::size_t in_size = g.c_in * g.h * g.w, out_size = g.c_out * hw;
  const std::size_t chunk = images_per_chunk(g), chunks = (g.batch + chunk - 1) / chunk;
  const std::size_t parts = std::min<std::size_t>(static_cast<std::size_t>(num_threads()), chunks);
  std::vector<float> dweight_parts(dweight && parts > 1 ? parts * g.c_out * k : 0, 0.f);
  std::vector<double> dbias_parts(dbias ? parts * g.c_out : 0, 0.0);
  parallel_for(parts, [&](std::size_t p0, std::size_t p1) {
    for (std::size_t part = p0; part < p1; ++part) {
      float* dw = dweight ? (parts > 1 ? dweight_parts.data() + part * g.c_out * k : dweight) : nullptr;
      if (dw && parts == 1) std::fill(dw, dw + g.c_out * k, 0.f);
      for (std::size_t c = part * chunks / parts; c < (part + 1) * chunks / parts; ++c) {
        const std::size_t n0 = c * chunk, n1 = std::min(g.batch, n0 + chunk), width = (n1 - n0) * hw;
        float* dy = conv_scratch(kProducts, g.c_out * width);
        for (std::size_t n = n0; n < n1; ++n) {
          for (std::size_t o = 0; o < g.c_out; ++o) {
            std::copy_n(dout + n * out_size + o * hw, hw, dy + o * width + (n - n0) * hw);
          }
        }
        if (dbias) {
          for (std::size_t o = 0; o < g.c_out; ++o)
            dbias_parts[part * g.c_out + o] += simd::sum_row(dy + o * width, width);
        }
        float* cols = conv_scratch(kColumns, k * width);
        if (dw) {
          for (std::size_t n = n0; n < n1; ++n) im2col(x + n * in_size, g, cols + (n - n0) * hw, width);
          gemm(false, true, g.c_out, k, width, 1.f, dy, cols, 1.f, dw);
        }
        if (dx) {
          gemm(true, false, k, width, g.c_out, 1.f, weight, dy, 0.f, cols);  // cols now holds dcols
          for (std::size_t n = n0; n < n1; ++n) {
            std::fill(dx + n * in_size, dx + (n + 1) * in_size, 0.f);
            col2im(cols + (n - n0) * hw, g, dx + n * in_size, width);
          }
        }
      }
    }
  });
  if (dweight && parts == 0) std::fill(dweight, dweight + g.c_out * k, 0.f);  // an empty batch
  if (dweight && parts > 1) {
    std::copy_n(dweight_parts.data(), g.c_out * k, dweight);
    for (std::size_t part = 1; part < parts; ++part) {
      const float* src = dweight_parts.data() + part * g.c_out * k;
      for (std::size_t i = 0; i < g.c_out * k; ++i) dweight[i] += src[i];
    }
  }
  if (dbias) sum_bias_parts(dbias_parts.data(), parts, g.c_out, dbias);
}

}  // namespace

void conv2d_im2col_forward(const float* x, const float* weight, const float* bias, const Conv2dGeometry& g,
                           float* out) {
  im2col_forward(x, weight, bias, g, out, false);
}

void conv2d_im2col_backward(const float* dout, const float* x, const float* weight, const Conv2dGeometry& g,
                            float* dx, float* dweight, float* dbias) {
  im2col_backward(dout, x, weight, g, dx, dweight, dbias, false);
}

void conv2d_im2col_bf16_forward(const float* x, const float* weight, const float* bias,
                                const Conv2dGeometry& g, float* out) {
  im2col_forward(x, weight, bias, g, out, true);
}

void conv2d_im2col_bf16_backward(const float* dout, const float* x, const float* weight,
                                 const Conv2dGeometry& g, float* dx, float* dweight, float* dbias) {
  im2col_backward(dout, x, weight, g, dx, dweight, dbias, true);
}

}  // namespace tg
