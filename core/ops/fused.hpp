// Inference passes: several ops run as one pass over memory, for eval and predict (docs/fusion.md), and their
// int8 forms (docs/int8.md; implemented in int8.cpp). They
// record nothing on the tape and have no backward; the op-coverage tests skip this header (no gradcheck, no
// named backward), and tests/core/test_conv2d_fused.cpp checks each pass against the ops it fuses, which
// are themselves checked against PyTorch. Implemented beside the ops they fuse (conv2d_fused: conv2d.cpp).
#pragma once

#include "core/autograd/tape.hpp"
#include "core/kernels/conv2d.hpp"
#include "core/kernels/conv2d_int8.hpp"
#include "core/ops/conv2d.hpp"

namespace tg {

// What follows a conv in an inference pass (docs/fusion.md): batch norm in eval mode (its four tensors, all
// defined, or none), a residual added (a tensor shaped as the output: a residual block's skip branch), and
// an activation, in that order.
struct ConvFollowers {
  Tensor bn_weight, bn_bias, bn_mean, bn_var;
  float bn_eps = 1e-5f;
  Tensor residual;
  ConvActivation act = ConvActivation::None;
};
// act(batch_norm2d(conv2d(x, weight, bias)) + residual) with running statistics, in one pass over the
// output: the conv kernel applies the rest as it writes each output row (the same float operations as the
// separate ops, so the results are those of conv2d, batch_norm2d, add and relu in a row up to the order of
// the conv's sums). An inference pass: it records nothing on the tape, and while gradients are recorded an
// input that requires one is a tg::Error. The op is named after its parts, "conv2d+batch_norm2d+add+relu",
// for the profiler.
Tensor conv2d_fused(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& options,
                    const ConvFollowers& followers);

// The int8 form of conv2d_fused (docs/int8.md): x quantized with `in` (x ~ in.scale * (q - zero_point)), the
// weights already quantized and packed (batch norm folded into them and into `bias`), the products summed in
// int32 (conv2d_int8_forward), then act(scale * sum + bias + residual) in float32. `weight_shape` is the
// conv's [Cout, Cin/groups, Kh, Kw]. Adds the input values clipped to 0 or 255 to *clipped when given. Named
// "conv2d_int8" plus its followers ("conv2d_int8+add+relu") for the profiler; an inference pass like the
// others.
Tensor conv2d_int8(const Tensor& x, const Conv2dInt8Weights& weight, const Shape& weight_shape,
                   const Conv2dOptions& options, Int8Quant in, const Tensor& bias, const Tensor& residual,
                   ConvActivation act, std::size_t* clipped = nullptr);
// act(x W^T + bias) for x [N, in] with W quantized and packed (linear_int8_forward). Named "linear_int8".
Tensor linear_int8(const Tensor& x, const LinearInt8Weights& weight, Int8Quant in, const Tensor& bias,
                   ConvActivation act, std::size_t* clipped = nullptr);

}  // namespace tg
