// Convolution kernels on raw buffers (contiguous, row-major, NCHW / OIHW), one family per file:
//   conv2d_im2col.cpp       im2col + SGEMM, any stride (the general path)
//   conv2d_direct_*.cpp     register-blocked direct kernels for stride 1 (no im2col matrix)
//   conv2d_depthwise_*.cpp  depthwise convs (groups = Cin = Cout): one filter per channel plane
//   conv2d_reference.cpp    the plain seven-loop definition, forward and backward, to test the others against
// Kernels know nothing of tensors or the tape; core/ops/conv2d.cpp validates shapes and picks one.
//
// Kernel names (all of core/kernels/): <op>_<variant>_<pass>. <op> is the op of core/ops/ the kernel
// computes; <variant> its algorithm: reference (the plain definition the others are tested against), im2col,
// direct, depthwise, argmax, rows, simd, lanes; <pass> is forward or backward, or stats for a reduction a
// forward runs first (batch_norm2d_lanes_stats). <op>_<variant>_applies says whether a variant takes a
// geometry. A variant's internal cases add a suffix (avg_pool2d_rows_forward_2x2). Helpers that compute no op
// keep their own names (sgemm, gemm_avx512, im2col, col2im, tg::simd).
#pragma once

#include <cstddef>
#include <cstdint>

namespace tg {

// Every size a conv2d kernel needs, resolved and validated from the input and weight shapes
// (tg::conv2d_geometry in core/ops/conv2d.hpp).
struct Conv2dGeometry {
  std::size_t batch, c_in, h, w;  // input [N, Cin, H, W]
  std::size_t c_out, kh, kw;      // weight [Cout, Cin/groups, Kh, Kw]
  std::size_t stride_h, stride_w, dilation_h, dilation_w;
  std::size_t pad_top, pad_bottom, pad_left, pad_right;
  std::size_t h_out, w_out;  // output [N, Cout, Hout, Wout]
  // Output channels [o*Cout/G, (o+1)*Cout/G) see input channels [o*Cin/G, (o+1)*Cin/G) only.
  std::size_t groups = 1;
  std::size_t patch() const { return c_in / groups * kh * kw; }  // a weight row; rows of the im2col matrix
  std::size_t pixels_out() const { return h_out * w_out; }       // its columns
};

// What an inference pass does to a conv's output in the same pass over memory (conv + batch norm + residual
// add + ReLU run as one, core/ops/conv2d.hpp conv2d_fused): for output channel o and v = the conv's value
// (bias included),
//   v = (v - mean[o]) * scale[o] + shift[o]   when scale is set (batch norm in eval mode, scale = gamma/std)
//   v = v + residual[i]                        when residual is set (the same element of a tensor shaped as
//                                              the output: a residual block's skip branch)
//   v = act(v)                                 ReLU: v > 0 ? v : 0; ReLU6: v < 0 ? 0 : v > 6 ? 6 : v
// the same float operations, in the same order, as batch_norm2d, add and relu/relu6 on the conv's output.
enum class ConvActivation { None, ReLU, ReLU6 };
struct ConvEpilogue {
  const float* mean = nullptr;      // [Cout], set with scale
  const float* scale = nullptr;     // [Cout], or null: no batch norm
  const float* shift = nullptr;     // [Cout], set with scale
  const float* residual = nullptr;  // aligned with the output pointer a kernel function is given, or null
  ConvActivation act = ConvActivation::None;
  bool none() const { return scale == nullptr && residual == nullptr && act == ConvActivation::None; }
  // The same epilogue for an output pointer `offset` floats further on.
  ConvEpilogue at(std::size_t offset) const {
    ConvEpilogue e = *this;
    if (e.residual) e.residual += offset;
    return e;
  }
};
// In place on out [N, Cout, Hout, Wout]: the epilogue as a pass of its own (kernels without it built in).
void conv2d_epilogue(float* out, const Conv2dGeometry& g, const ConvEpilogue& e);

// Every kernel family has the same pair of signatures:
//   forward:  out [N, Cout, Hout, Wout] from x [N, Cin, H, W], weight [Cout, Cin, Kh, Kw],
//             bias [Cout] or null.
//   backward: dx [N, Cin, H, W], dweight [Cout, Cin, Kh, Kw], dbias [Cout] from dout [N, Cout, Hout, Wout];
//             each of dx, dweight, dbias may be null (not needed) and is overwritten otherwise.
// im2col and direct take groups = 1 only (core/ops/conv2d.cpp runs them per group); the depthwise and
// reference kernels take their groups from the geometry.

// ---- im2col + SGEMM (conv2d_im2col.cpp) ----
// cols [Cin*Kh*Kw, Hout*Wout] of one image x [Cin, H, W], rows `row_stride` floats apart (Hout*Wout for one
// image alone, N*Hout*Wout when the batch shares one matrix); padded cells are 0.
void im2col(const float* x, const Conv2dGeometry& g, float* cols, std::size_t row_stride);
// The adjoint: adds cols back into dx [Cin, H, W].
void col2im(const float* cols, const Conv2dGeometry& g, float* dx, std::size_t row_stride);
void conv2d_im2col_forward(const float* x, const float* weight, const float* bias, const Conv2dGeometry& g,
                           float* out);
void conv2d_im2col_backward(const float* dout, const float* x, const float* weight, const Conv2dGeometry& g,
                            float* dx, float* dweight, float* dbias);
// The same with the products in bf16 (sgemm_bf16 of blas.hpp: bf16 mixed precision; AVX512_BF16 builds only).
void conv2d_im2col_bf16_forward(const float* x, const float* weight, const float* bias,
                                const Conv2dGeometry& g, float* out);
void conv2d_im2col_bf16_backward(const float* dout, const float* x, const float* weight,
                                 const Conv2dGeometry& g, float* dx, float* dweight, float* dbias);

// ---- direct, stride 1 only (conv2d_direct_*.cpp) ----
bool conv2d_direct_applies(const Conv2dGeometry& g);  // stride 1
void conv2d_direct_forward(const float* x, const float* weight, const float* bias, const Conv2dGeometry& g,
                           float* out);
// The same with the epilogue applied as the output is written (no second pass over it).
void conv2d_direct_forward_fused(const float* x, const float* weight, const float* bias,
                                 const Conv2dGeometry& g, const ConvEpilogue& e, float* out);
void conv2d_direct_backward(const float* dout, const float* x, const float* weight, const Conv2dGeometry& g,
                            float* dx, float* dweight, float* dbias);

// ---- direct in bf16 mixed precision, stride 1 (conv2d_direct_bf16.cpp) ----
// The direct kernels with x, weight and dout rounded to bfloat16 in each pass and the products accumulated in
// float32 by AVX512_BF16's vdpbf16ps; inputs and outputs stay float32 arrays. Only in builds that target
// AVX512_BF16 (conv2d_direct_bf16_compiled); tg::bf16_supported (core/runtime/precision.hpp) checks the CPU.
bool conv2d_direct_bf16_compiled();
void conv2d_direct_bf16_forward(const float* x, const float* weight, const float* bias,
                                const Conv2dGeometry& g, float* out);
void conv2d_direct_bf16_backward(const float* dout, const float* x, const float* weight,
                                 const Conv2dGeometry& g, float* dx, float* dweight, float* dbias);
// bfloat16 rounding as vcvtneps2bf16 does it: to nearest even, denormals to signed zero, NaN stays NaN.
std::uint16_t to_bf16(float f);
float from_bf16(std::uint16_t h);

// ---- depthwise, groups = Cin = Cout, any stride, padding and dilation (conv2d_depthwise_*.cpp) ----
bool conv2d_depthwise_applies(const Conv2dGeometry& g);  // groups = Cin = Cout > 1
void conv2d_depthwise_forward(const float* x, const float* weight, const float* bias, const Conv2dGeometry& g,
                              float* out);
void conv2d_depthwise_backward(const float* dout, const float* x, const float* weight,
                               const Conv2dGeometry& g, float* dx, float* dweight, float* dbias);

// ---- the definition (conv2d_reference.cpp): slow, obviously right, accumulates in double ----
void conv2d_reference_forward(const float* x, const float* weight, const float* bias, const Conv2dGeometry& g,
                              float* out);
void conv2d_reference_backward(const float* dout, const float* x, const float* weight,
                               const Conv2dGeometry& g, float* dx, float* dweight, float* dbias);

}  // namespace tg
