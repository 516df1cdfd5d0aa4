// conv2d: 2-D convolution (cross-correlation, as PyTorch's conv2d), its named backward, and the choice of
// kernel (core/kernels/conv2d.hpp: direct kernels for stride 1, im2col + SGEMM otherwise, a depthwise kernel
// for groups = Cin = Cout).
#pragma once

#include <array>
#include <cstddef>
#include <vector>

#include "core/autograd/tape.hpp"
#include "core/kernels/conv2d.hpp"

namespace tg {

// Zero padding of height and width: {.padding = {2, 2}}; or tg::kSame ("same" output size, stride 1, the
// extra pixel of an even kernel going bottom/right as in PyTorch) and tg::kValid (none), as Keras names them.
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
  // Channel groups as PyTorch's: input and output channels split into `groups` slices, output slice g
  // computed from input slice g alone; weight [Cout, Cin/groups, Kh, Kw]. groups = Cin is depthwise.
  int groups = 1;
};

// Validates shapes and options (throws tg::Error naming conv2d and the shapes) and computes the sizes.
Conv2dGeometry conv2d_geometry(const Shape& x, const Shape& weight, const Conv2dOptions& options);

// Which kernel family runs a conv. Auto: conv2d_kernel() decides per shape; the others force one (tests and
// benchmarks compare them; Direct falls back to im2col where it does not apply, stride > 1; both run a
// grouped conv group by group, depthwise ones too). Process-wide; read by the forward only.
enum class ConvAlgorithm { Auto, Im2col, Direct };
void set_conv_algorithm(ConvAlgorithm algorithm);
ConvAlgorithm conv_algorithm();
enum class Conv2dKernel { Im2col, Direct, Depthwise, DirectBf16, Im2colBf16 };
Conv2dKernel conv2d_kernel(const Conv2dGeometry& g);

// x NCHW, weight [Cout, Cin/groups, Kh, Kw], bias [Cout] or Tensor{} -> [N, Cout, Hout, Wout]
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& options = {});
// d(out) -> {dx, dweight[, dbias]} (no_gradient() for an input that needs none), computed by `kernel`: the
// family the forward ran (conv2d records its choice on the tape), whatever set_conv_algorithm says by now.
std::vector<Array> conv2d_backward(const Array& dout, const Tensor& x, const Tensor& weight,
                                   const Tensor& bias, const Conv2dGeometry& g, Conv2dKernel kernel);

}  // namespace tg
