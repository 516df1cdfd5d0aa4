// Internals shared by the conv kernel families (conv2d_im2col.cpp, conv2d_direct_*.cpp,
// conv2d_depthwise_*.cpp): per-thread scratch buffers, and the sum of the per-thread parts of the bias
// gradients (conv2d_scratch.cpp).
#pragma once

#include <cstddef>

#include "core/kernels/conv2d.hpp"

namespace tg {

// Per-thread scratch of the conv kernels, grown as needed and kept step after step (the im2col matrix of a
// batch is megabytes; allocating it afresh every step would page-fault it in every step). One slot per use.
enum ConvScratch { kColumns, kProducts, kPadded, kWide, kOther, kNumConvScratch };
float* conv_scratch(ConvScratch slot, std::size_t count);
// dbias[o] = the sum over `count` per-thread parts [count][c_out], in part order (both backward kernels).
void sum_bias_parts(const double* parts, std::size_t count, std::size_t c_out, float* dbias);

}  // namespace tg
