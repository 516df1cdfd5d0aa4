// Inference passes: several ops run as one pass over memory, for eval and predict (docs/fusion.md). They
// record nothing on the tape and have no backward; the op-coverage tests skip this header (no gradcheck, no
// named backward), and tests/core/test_conv2d_fused.cpp checks each pass against the ops it fuses, which
// are themselves checked against PyTorch. Implemented beside the ops they fuse (conv2d_fused: conv2d.cpp).
#pragma once

#include "core/autograd/tape.hpp"
#include "core/kernels/conv2d.hpp"
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

}  // namespace tg
