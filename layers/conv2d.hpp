// Conv2D: 2-D convolution over NCHW batches, weight [Cout, Cin/groups, Kh, Kw], as nn.Conv2d.
#pragma once

#include "core/ops/conv2d.hpp"
#include "core/ops/fused.hpp"
#include "layers/module.hpp"

namespace tg {

// A kernel size: one int for a square kernel, or {kh, kw}.
struct KernelSize {
  KernelSize(int k) : h(k), w(k) {}  // NOLINT(google-explicit-constructor): Conv2D(1, 6, 5) reads best
  KernelSize(int kh, int kw) : h(kh), w(kw) {}
  int h, w;
};

class Conv2D : public Module {
 public:
  Conv2D(std::size_t in_channels, std::size_t out_channels, KernelSize kernel, Conv2dOptions options = {},
         bool bias = true);
  Tensor forward(const Tensor& x) override;
  // The inference pass that starts at this conv (layers/fusion.hpp, docs/fusion.md): conv2d_fused with what
  // follows it. Eval and predict run this instead of forward() (`rbreak Conv2D::forward` stops in both).
  Tensor forward_fused(const Tensor& x, const ConvFollowers& followers) const;
  std::string describe() const override;
  Shape output_shape(const Shape& input) const override;  // [Cin, H, W] -> [Cout, Hout, Wout]
  // conv2d OUT KERNEL [stride=S] [padding=P|same|valid] [dilation=D] [groups=G] [bias=true|false]
  std::string to_line() const override;

  Tensor weight;  // [Cout, Cin/groups, Kh, Kw]
  Tensor bias;    // [Cout], or undefined
  std::size_t in_channels, out_channels;
  KernelSize kernel;
  Conv2dOptions options;

 private:
  // tg::Error unless x is [N, in_channels, H, W] (forward and forward_fused).
  void check_input(const Tensor& x) const;
};

}  // namespace tg
