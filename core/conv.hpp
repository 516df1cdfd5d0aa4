// 2-D convolution (cross-correlation, as PyTorch's conv2d): im2col + SGEMM forward, SGEMMs + col2im backward.
#pragma once

#include <array>
#include <cstddef>

#include "core/tape.hpp"

namespace tg {

// Zero padding of height and width: {.padding = {2, 2}}; or tg::kSame ("same" output size, stride 1,
// the extra pixel of an even kernel going bottom/right as in PyTorch) and tg::kValid (none), as Keras names them.
struct Padding2d {
  int h = 0;
  int w = 0;
  bool same = false;
};
inline constexpr Padding2d kSame{0, 0, true};
inline constexpr Padding2d kValid{0, 0, false};

struct Conv2dOptions {
  std::array<int, 2> stride{1, 1};
  Padding2d padding{};
  std::array<int, 2> dilation{1, 1};
};

// Every size a conv2d kernel needs, resolved and validated from the input and weight shapes.
struct Conv2dGeometry {
  std::size_t batch, c_in, h, w;         // input [N, Cin, H, W]
  std::size_t c_out, kh, kw;             // weight [Cout, Cin, Kh, Kw]
  std::size_t stride_h, stride_w, dilation_h, dilation_w;
  std::size_t pad_top, pad_bottom, pad_left, pad_right;
  std::size_t h_out, w_out;              // output [N, Cout, Hout, Wout]
  std::size_t patch() const { return c_in * kh * kw; }      // rows of the im2col matrix
  std::size_t pixels_out() const { return h_out * w_out; }  // its columns
};

// Validates shapes and options (throws tg::Error naming conv2d and the shapes) and computes the sizes.
Conv2dGeometry conv2d_geometry(const Shape& x, const Shape& weight, const Conv2dOptions& options);

// x NCHW, weight [Cout, Cin, Kh, Kw], bias [Cout] or Tensor{} -> [N, Cout, Hout, Wout]
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& options = {});

// ---- kernels on raw buffers (contiguous, row-major) ----
// cols [Cin*Kh*Kw, Hout*Wout] of one image x [Cin, H, W], rows `row_stride` floats apart (Hout*Wout for one
// image alone, N*Hout*Wout when the batch shares one matrix); padded cells are 0.
void im2col(const float* x, const Conv2dGeometry& g, float* cols, std::size_t row_stride);
// The adjoint: adds cols back into dx [Cin, H, W].
void col2im(const float* cols, const Conv2dGeometry& g, float* dx, std::size_t row_stride);
// out [N, Cout, Hout, Wout]; bias may be null.
void conv2d_forward(const float* x, const float* weight, const float* bias, const Conv2dGeometry& g, float* out);
// Gradients of the conv; any of dx, dweight, dbias may be null (not needed). dx is overwritten,
// dweight and dbias too.
void conv2d_backward(const float* dout, const float* x, const float* weight, const Conv2dGeometry& g, float* dx,
                     float* dweight, float* dbias);
// Which kernel conv2d_forward / conv2d_backward run: Auto picks per shape (direct for stride 1, im2col +
// SGEMM otherwise); the others force one (tests and benchmarks compare them). Direct falls back to im2col
// where it does not apply (stride > 1). Process-wide.
enum class ConvAlgorithm { Auto, Im2col, Direct };
void set_conv_algorithm(ConvAlgorithm algorithm);
ConvAlgorithm conv_algorithm();
// The plain seven-loop definition, kept beside the fast kernel to test it against.
void conv2d_forward_reference(const float* x, const float* weight, const float* bias, const Conv2dGeometry& g,
                              float* out);

}  // namespace tg
