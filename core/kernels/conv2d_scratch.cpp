// Per-thread scratch of both conv kernel families, and the row sums of their bias gradients.
#include "core/kernels/conv2d_scratch.hpp"

#include <vector>
#include <xsimd/xsimd.hpp>

namespace tg {

float* conv_scratch(ConvScratch slot, std::size_t count) {
  thread_local std::vector<float> buffers[kNumConvScratch];
  std::vector<float>& b = buffers[slot];
  if (b.size() < count) b.resize(count);
  return b.data();
}

// Four vector accumulators: a scalar chain of dependent adds is latency-bound (4 cycles per element).
double sum_row(const float* src, std::size_t n) {
  using Batch = xsimd::batch<float>;
  constexpr std::size_t V = Batch::size;
  Batch a0(0.f), a1(0.f), a2(0.f), a3(0.f);
  std::size_t i = 0;
  for (; i + 4 * V <= n; i += 4 * V) {
    a0 += Batch::load_unaligned(src + i), a1 += Batch::load_unaligned(src + i + V);
    a2 += Batch::load_unaligned(src + i + 2 * V), a3 += Batch::load_unaligned(src + i + 3 * V);
  }
  for (; i + V <= n; i += V) a0 += Batch::load_unaligned(src + i);
  double s = static_cast<double>(xsimd::hadd((a0 + a1) + (a2 + a3)));
  for (; i < n; ++i) s += src[i];
  return s;
}

void sum_bias_parts(const double* parts, std::size_t count, std::size_t c_out, float* dbias) {
  for (std::size_t o = 0; o < c_out; ++o) {
    double s = 0.0;
    for (std::size_t part = 0; part < count; ++part) s += parts[part * c_out + o];
    dbias[o] = static_cast<float>(s);
  }
}

}  // namespace tg
