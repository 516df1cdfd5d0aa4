// The convolution by its definition, seven plain loops, accumulating in double, for any groups: the kernels
// that the others (im2col + SGEMM, direct, depthwise) are tested against, forward and backward.
//   out[n][o][oh][ow] = bias[o] + sum_{c,i,j} w[o][c][i][j] *
//                       x[n][o/(Cout/G)*(Cin/G) + c][oh*sh + i*dh - pad_top][ow*sw + j*dw - pad_left]
// with c over the Cin/G input channels of output channel o's group (G = groups).
#include <algorithm>
#include <vector>

#include "core/kernels/conv2d.hpp"

namespace tg {
namespace {

// Calls f(n, o, oh, ow, c, i, j, x_index, w_index) for every term of the sum above whose input pixel lies
// inside the image (padded cells are zeros and add nothing).
template <class F>
void for_each_term(const Conv2dGeometry& g, F f) {
  const std::size_t group_in = g.c_in / g.groups, group_out = g.c_out / g.groups;
  for (std::size_t n = 0; n < g.batch; ++n)
    for (std::size_t o = 0; o < g.c_out; ++o)
      for (std::size_t oh = 0; oh < g.h_out; ++oh)
        for (std::size_t ow = 0; ow < g.w_out; ++ow)
          for (std::size_t c = 0; c < group_in; ++c)
            for (std::size_t i = 0; i < g.kh; ++i)
              for (std::size_t j = 0; j < g.kw; ++j) {
                const auto ih = static_cast<std::ptrdiff_t>(oh * g.stride_h + i * g.dilation_h) -
                                static_cast<std::ptrdiff_t>(g.pad_top);
                const auto iw = static_cast<std::ptrdiff_t>(ow * g.stride_w + j * g.dilation_w) -
                                static_cast<std::ptrdiff_t>(g.pad_left);
                if (ih < 0 || iw < 0 || ih >= static_cast<std::ptrdiff_t>(g.h) ||
                    iw >= static_cast<std::ptrdiff_t>(g.w))
                  continue;
                const std::size_t x_c = o / group_out * group_in + c;
                const std::size_t x_index = ((n * g.c_in + x_c) * g.h + static_cast<std::size_t>(ih)) * g.w +
                                            static_cast<std::size_t>(iw);
                const std::size_t w_index = ((o * group_in + c) * g.kh + i) * g.kw + j;
                const std::size_t out_index = ((n * g.c_out + o) * g.h_out + oh) * g.w_out + ow;
                f(out_index, x_index, w_index, o);
              }
}

}  // namespace

void conv2d_reference_forward(const float* x, const float* weight, const float* bias, const Conv2dGeometry& g,
                              float* out) {
  const std::size_t out_size = g.batch * g.c_out * g.pixels_out();
  std::vector<double> acc(out_size, 0.0);
  for_each_term(g, [&](std::size_t out_index, std::size_t x_index, std::size_t w_index, std::size_t) {
    acc[out_index] += static_cast<double>(x[x_index]) * weight[w_index];
  });
  const std::size_t hw = g.pixels_out();
  for (std::size_t i = 0; i < out_size; ++i) {
    const std::size_t o = (i / hw) % g.c_out;
    out[i] = static_cast<float>(acc[i] + (bias ? bias[o] : 0.0));
  }
}

// Each term of the sum above contributes dout * w to dx, dout * x to dweight; dbias[o] sums dout over
// n, oh, ow.
void conv2d_reference_backward(const float* dout, const float* x, const float* weight,
                               const Conv2dGeometry& g, float* dx, float* dweight, float* dbias) {
  std::vector<double> dx_acc(dx ? g.batch * g.c_in * g.h * g.w : 0, 0.0);
  std::vector<double> dw_acc(dweight ? g.c_out * g.patch() : 0, 0.0);
  for_each_term(g, [&](std::size_t out_index, std::size_t x_index, std::size_t w_index, std::size_t) {
    const double d = dout[out_index];
    if (dx) dx_acc[x_index] += d * weight[w_index];
    if (dweight) dw_acc[w_index] += d * x[x_index];
  });
  std::transform(dx_acc.begin(), dx_acc.end(), dx ? dx : nullptr,
                 [](double v) { return static_cast<float>(v); });
  std::transform(dw_acc.begin(), dw_acc.end(), dweight ? dweight : nullptr,
                 [](double v) { return static_cast<float>(v); });
  if (dbias) {
    const std::size_t hw = g.pixels_out();
    for (std::size_t o = 0; o < g.c_out; ++o) {
      double s = 0.0;
      for (std::size_t n = 0; n < g.batch; ++n)
        for (std::size_t p = 0; p < hw; ++p) s += dout[(n * g.c_out + o) * hw + p];
      dbias[o] = static_cast<float>(s);
    }
  }
}

}  // namespace tg
