// int8 inference kernels (docs/int8.md): convolutions (dense, grouped and depthwise) whose products are
// unsigned 8-bit activations times signed 8-bit weights summed exactly in int32, the integer form of
// post-training quantization:
//   activations  x ~ in.scale * (q - in.zero_point), q in [0, 255] (asymmetric; zero point 0 after a ReLU)
//   weights      w ~ w.scale[o] * q, q in [-127, 127] (symmetric, one scale per output channel)
//   output       out[o] = in.scale * w.scale[o] * (sum of q(x) * q(w) - zero_point * sum of q(w)) + bias[o]
// then the residual and the activation, in float32. With AVX512_VNNI (vpdpbusd: 64 u8 x s8 products per
// instruction, four times an fp32 FMA) where the CPU has it, checked at run time; otherwise the same integer
// sums in plain C++ (conv2d_int8_fallback, bit for bit the same output). Kernels know nothing of tensors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/kernels/conv2d.hpp"

namespace tg {

// Whether the int8 kernels run vpdpbusd here: the CPU reports AVX512_VNNI and AVX512BW and neither
// force_int8_fallback nor the environment variable TAPEGRAD_NO_VNNI (set, not 0) hides them.
bool int8_vnni_supported();
// Why they do not, in one sentence; "" when they do.
std::string int8_vnni_unsupported_reason();
// For tests: run the plain C++ kernels (true) or what the CPU has (false).
void force_int8_fallback(bool on);

// The quantization of an activation tensor: x ~ scale * (q - zero_point), q in [0, 255].
struct Int8Quant {
  float scale = 1.f;
  int zero_point = 0;
};
// q = clamp(round(x / scale) + zero_point, 0, 255), rounding to nearest even; NaN -> 0. The computation every
// int8 kernel uses for its input.
std::uint8_t quantize_u8(float x, float inv_scale, int zero_point);

// A conv's weights, quantized per output channel and packed for the kernels (pack_conv2d_int8). The reduction
// of output channel o runs in `steps` steps of four input channels at one kernel position, step
// (ky * kw + kx) * quads + j covering channels 4 * (quad_base[group] + j) + 0..3; each step's four int8
// weights are one int32 word (channel 4q + b in byte b), zero for a channel outside the group or past Cin.
struct Conv2dInt8Weights {
  std::size_t c_out = 0, steps = 0, quads = 0;
  std::vector<std::int32_t> words;     // [Cout][steps]
  std::vector<std::int32_t> sums;      // [Cout]: the sum of output channel o's int8 weights
  std::vector<float> scale;            // [Cout]: w ~ scale[o] * q
  std::vector<std::size_t> quad_base;  // [groups]: the first channel quad group g reads
  std::size_t bytes() const { return words.size() * 4 + sums.size() * 4 + scale.size() * 4; }
};
// Per output channel: scale = max |w| / 127 (1 for an all-zero channel), q = round(w / scale).
Conv2dInt8Weights pack_conv2d_int8(const float* weight, const Conv2dGeometry& g);
// From weights already quantized: q [Cout][Cin/groups][Kh][Kw] and scale [Cout] (the tests' exact cases).
Conv2dInt8Weights pack_conv2d_int8(const std::int8_t* q, const float* scale, const Conv2dGeometry& g);

// What follows the integer sums, in float32: bias [Cout] or null; residual shaped as the output, or null;
// act.
struct Int8Epilogue {
  const float* bias = nullptr;
  const float* residual = nullptr;
  ConvActivation act = ConvActivation::None;
};

// out [N, Cout, Hout, Wout] from x [N, Cin, H, W] (float32, quantized with `in` as the kernel reads it;
// padding is the zero point, i.e. 0.0) and packed weights; any stride, padding, dilation and groups. Returns
// how many input values were clipped to 0 or 255 beyond rounding (their share says whether `in` saturates).
std::size_t conv2d_int8_forward(const float* x, const Conv2dInt8Weights& w, const Conv2dGeometry& g,
                                Int8Quant in, const Int8Epilogue& e, float* out);

// ---- linear layers: y [N, out] = x [N, in] W^T + bias, with W [out, in] quantized per output feature ----
// Lanes over output features: each step broadcasts four input features of one example (u8) against the 16
// output features' four int8 weights, so a batch of one fills every lane (linear_int8.cpp).
struct LinearInt8Weights {
  std::size_t in = 0, out = 0, quads = 0, out_padded = 0;  // quads = ceil(in / 4); out rounded up to 16
  std::vector<std::int32_t> words;  // [quads][out_padded]: features 4q..4q+3 of output o
  std::vector<std::int32_t> sums;   // [out]
  std::vector<float> scale;         // [out]
  std::size_t bytes() const { return words.size() * 4 + sums.size() * 4 + scale.size() * 4; }
};
// Per output feature: scale = max |w| / 127 (1 for all zeros), q = round(w / scale), as pack_conv2d_int8.
LinearInt8Weights pack_linear_int8(const float* weight, std::size_t out, std::size_t in);
LinearInt8Weights pack_linear_int8(const std::int8_t* q, const float* scale, std::size_t out, std::size_t in);
// out [N, out] = act(in.scale * w.scale[o] * (sum - zero_point * w.sums[o]) + bias[o]) for x [N, in];
// returns the input values clipped. VNNI where the CPU has it, the same bits in plain C++ otherwise.
std::size_t linear_int8_forward(const float* x, std::size_t batch, const LinearInt8Weights& w, Int8Quant in,
                                const float* bias, ConvActivation act, float* out);

// The depthwise case (groups = Cin = Cout) with AVX512_VBMI's byte permutation (conv2d_int8_depthwise.cpp):
// the same sums and outputs as conv2d_int8_forward's general path, which calls it where it applies (VNNI and
// VBMI present and not hidden, a row's 16 outputs within one 64-byte load).
bool conv2d_int8_depthwise_applies(const Conv2dGeometry& g);
std::size_t conv2d_int8_depthwise_forward(const float* x, const Conv2dInt8Weights& w, const Conv2dGeometry& g,
                                          Int8Quant in, const Int8Epilogue& e, float* out);

}  // namespace tg
