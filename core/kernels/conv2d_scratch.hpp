// Internals shared by the conv kernel families (conv2d_im2col.cpp, conv2d_direct_*.cpp,
// conv2d_depthwise_*.cpp): per-thread scratch buffers, and the sum of the per-thread parts of the bias
// gradients (conv2d_scratch.cpp).
#pragma once

#include <cstddef>
#include <functional>

#include "core/kernels/conv2d.hpp"

namespace tg {

// Per-thread scratch of the conv kernels, grown as needed and kept step after step (the im2col matrix of a
// batch is megabytes; allocating it afresh every step would page-fault it in every step). One slot per use.
enum ConvScratch { kColumns, kProducts, kPadded, kWide, kOther, kNumConvScratch };
float* conv_scratch(ConvScratch slot, std::size_t count);
// Whether a batch smaller than the pool splits its images' convs over the threads: only when each thread gets
// at least kMinSplitMacsPerThread multiply-adds. Below that the split costs more than it saves: each thread
// reads what another core wrote (the padded input, the previous layer's output), and on this 2-core machine
// resnet20's batch-1 convs of 2.4M multiply-adds ran no faster on 2 threads, its 8x8 and strided ones
// slower, and the whole model 20% slower at T=2 than at T=1.
inline constexpr double kMinSplitMacsPerThread = 4e6;
inline bool worth_splitting_images(const Conv2dGeometry& g, std::size_t threads) {
  const double macs = static_cast<double>(g.c_out) * static_cast<double>(g.patch()) *
                      static_cast<double>(g.pixels_out()) * static_cast<double>(g.batch);
  return macs >= kMinSplitMacsPerThread * static_cast<double>(threads);
}

// The backward of a chunked kernel family (direct, fp32 and bf16): images in chunks of `chunk`, the chunks
// split into one contiguous part per thread; body(n0, n1, dweight_part, dbias_part) adds chunk [n0, n1)'s
// share into its part's buffers (null when not wanted) and writes its dx. The parts are then added in part
// order into dweight [weight_size] and dbias [c_out] (each null when not wanted): results depend only on the
// thread count.
void backward_in_parts(std::size_t batch, std::size_t chunk, std::size_t weight_size, std::size_t c_out,
                       float* dweight, float* dbias,
                       const std::function<void(std::size_t, std::size_t, float*, double*)>& body);

// dbias[o] = the sum over `count` per-thread parts [count][c_out], in part order (both backward kernels).
void sum_bias_parts(const double* parts, std::size_t count, std::size_t c_out, float* dbias);

}  // namespace tg
