// Fused passes (docs/fusion.md). Inference passes: several ops run as one pass over memory, for eval and
// predict, and their int8 forms (docs/int8.md; implemented in int8.cpp); they record nothing on the tape and
// have no backward. Training passes: a conv or batch norm and the ReLU after it, recorded as the two ops they
// fuse, with those ops' own named backwards. The op-coverage tests skip this header (no gradcheck, no named
// backward of its own), and tests/core/test_conv2d_fused.cpp checks each pass against the ops it fuses,
// which are themselves checked against PyTorch. Implemented beside the ops they fuse (conv2d_fused and the
// training conv2d: conv2d.cpp; the training batch_norm2d: normalization.cpp; fused_activation:
// elementwise.cpp).
#pragma once

#include "core/autograd/tape.hpp"
#include "core/kernels/conv2d.hpp"
#include "core/kernels/conv2d_int8.hpp"
#include "core/ops/conv2d.hpp"
#include "core/ops/normalization.hpp"

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

// Training fusion: what the layer before an activation hands to it. The caller sets `act` (ReLU or ReLU6);
// the op (the conv2d and batch_norm2d below) computes act(its output) in its own pass into `activated`,
// records its own entry with its output not stored (make_unstored_op: recomputed from its inputs if read
// before backward), and sets `fused`. fused_activation then records the activation's entry on `activated`.
// When the op would record nothing (no gradients, or no input requires one), it runs as usual and leaves
// `fused` false; fused_activation then runs the activation itself.
struct ActivationAhead {
  ConvActivation act = ConvActivation::None;
  Array activated;
  bool fused = false;
  const Node* output = nullptr;  // the op's output node: fused_activation takes `activated` only for it
};
// conv2d(x, weight, bias, options), with ahead.act applied in the kernel's pass as it writes each output row
// (the direct kernels; the others in one pass over their output). The entry is "conv2d" with
// conv2d_backward, as conv2d's.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& options,
              ActivationAhead& ahead);
// batch_norm2d(x, weight, bias, options), ahead.act applied to its output in place; entry "batch_norm2d"
// with batch_norm2d_backward (which reads x and the statistics, never the output).
Tensor batch_norm2d(const Tensor& x, const Tensor& weight, const Tensor& bias,
                    const BatchNorm2dOptions& options, ActivationAhead& ahead);
// relu(x) or relu6(x) (ahead.act): with ahead.fused and x the fused op's output (ahead.output), recorded on
// ahead.activated (moved out) with relu_backward / relu6_backward, x's value never read; otherwise the op
// itself on x (a layer that transformed the fused op's output before returning it gets the plain ReLU).
Tensor fused_activation(const Tensor& x, ActivationAhead& ahead);

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
