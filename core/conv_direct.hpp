// Direct kernels for stride-1 convolutions (see conv_direct.cpp): no im2col matrix, the input read in place
// from a zero-padded copy of each image. conv2d_forward / conv2d_backward pick them (tg::ConvAlgorithm).
#pragma once

#include "core/conv.hpp"

namespace tg {

bool conv2d_direct_applies(const Conv2dGeometry& g);  // stride 1
void conv2d_direct_forward(const float* x, const float* weight, const float* bias, const Conv2dGeometry& g,
                           float* out);
void conv2d_direct_backward(const float* dout, const float* x, const float* weight, const Conv2dGeometry& g,
                            float* dx, float* dweight, float* dbias);
// Per-thread scratch of both conv paths, grown as needed and kept step after step (the im2col matrix of a
// batch is megabytes; allocating it afresh every step would page-fault it in every step). One slot per use.
enum ConvScratch { kColumns, kProducts, kPadded, kWide, kOther, kNumConvScratch };
float* conv_scratch(ConvScratch slot, std::size_t count);
// The sum of n floats (vector accumulators, a double total): bias gradients.
double sum_row(const float* src, std::size_t n);
// dbias[o] = the sum over `count` per-thread parts [count][c_out], in part order (both backward kernels).
void sum_bias_parts(const double* parts, std::size_t count, std::size_t c_out, float* dbias);

}  // namespace tg
