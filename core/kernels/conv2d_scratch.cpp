// Per-thread scratch of the conv kernel families, and the sum of the per-thread parts of their bias
// gradients.
#include "core/kernels/conv2d_scratch.hpp"

#include <algorithm>
#include <vector>

#include "core/runtime/threads.hpp"

namespace tg {

float* conv_scratch(ConvScratch slot, std::size_t count) {
  thread_local std::vector<float> buffers[kNumConvScratch];
  std::vector<float>& b = buffers[slot];
  if (b.size() < count) b.resize(count);
  return b.data();
}

void backward_in_parts(std::size_t batch, std::size_t chunk, std::size_t weight_size, std::size_t c_out,
                       float* dweight, float* dbias,
                       const std::function<void(std::size_t, std::size_t, float*, double*)>& body) {
  const std::size_t chunks = (batch + chunk - 1) / chunk;
  const std::size_t parts = std::min<std::size_t>(static_cast<std::size_t>(num_threads()), chunks);
  std::vector<float> dweight_parts(dweight ? parts * weight_size : 0, 0.f);
  std::vector<double> dbias_parts(dbias ? parts * c_out : 0, 0.0);
  parallel_for(parts, [&](std::size_t p0, std::size_t p1) {
    for (std::size_t part = p0; part < p1; ++part) {
      float* dw_part = dweight ? dweight_parts.data() + part * weight_size : nullptr;
      double* db_part = dbias ? dbias_parts.data() + part * c_out : nullptr;
      for (std::size_t c = part * chunks / parts; c < (part + 1) * chunks / parts; ++c)
        body(c * chunk, std::min(batch, c * chunk + chunk), dw_part, db_part);
    }
  });
  if (dweight) {
    std::fill(dweight, dweight + weight_size, 0.f);
    for (std::size_t part = 0; part < parts; ++part) {
      const float* src = dweight_parts.data() + part * weight_size;
      for (std::size_t i = 0; i < weight_size; ++i) dweight[i] += src[i];
    }
  }
  if (dbias) sum_bias_parts(dbias_parts.data(), parts, c_out, dbias);
}

void sum_bias_parts(const double* parts, std::size_t count, std::size_t c_out, float* dbias) {
  for (std::size_t o = 0; o < c_out; ++o) {
    double s = 0.0;
    for (std::size_t part = 0; part < count; ++part) s += parts[part * c_out + o];
    dbias[o] = static_cast<float>(s);
  }
}

}  // namespace tg
