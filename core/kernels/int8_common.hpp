// What the int8 kernels share (conv2d_int8.cpp defines them; conv2d_int8_depthwise.cpp and linear_int8.cpp
// call them): quantizing a row of floats to bytes, and the float32 epilogue of a run of int32 sums. Each has a
// VNNI-target form and a plain C++ form giving the same bits (`vnni` picks).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/kernels/conv2d.hpp"

namespace tg::int8_common {

// dst[i] = quantize_u8(x[i], inv_scale, zero_point) for i < n; returns the values clipped beyond rounding.
std::size_t quantize_bytes(const float* x, std::size_t n, float inv_scale, int zero_point, std::uint8_t* dst,
                           bool vnni);
// dst[i] = act(fma(float(acc[i] - correction), scale, bias) + res[i]) for i < n (res may be null); ReLU as
// max(v, 0), ReLU6 as min(max(v, 0), 6), in vmaxps/vminps's order.
void store_run(const std::int32_t* acc, std::size_t n, std::int32_t correction, float scale, float bias,
               const float* res, ConvActivation act, float* dst, bool vnni);

}  // namespace tg::int8_common
