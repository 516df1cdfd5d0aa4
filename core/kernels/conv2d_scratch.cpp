// Per-thread scratch of the conv kernel families, and the sum of the per-thread parts of their bias
// gradients.
#include "core/kernels/conv2d_scratch.hpp"

#include <vector>

namespace tg {

float* conv_scratch(ConvScratch slot, std::size_t count) {
  thread_local std::vector<float> buffers[kNumConvScratch];
  std::vector<float>& b = buffers[slot];
  if (b.size() < count) b.resize(count);
  return b.data();
}

void sum_bias_parts(const double* parts, std::size_t count, std::size_t c_out, float* dbias) {
  for (std::size_t o = 0; o < c_out; ++o) {
    double s = 0.0;
    for (std::size_t part = 0; part < count; ++part) s += parts[part * c_out + o];
    dbias[o] = static_cast<float>(s);
  }
}

}  // namespace tg
