// MaxPool2D: max over windows of each channel, as nn.MaxPool2d (stride defaults to the kernel).
#pragma once

#include "core/ops/pooling.hpp"
#include "layers/module.hpp"

namespace tg {

class MaxPool2D : public Module {
 public:
  explicit MaxPool2D(int kernel) : MaxPool2D(MaxPool2dOptions{.kernel = {kernel, kernel}}) {}
  explicit MaxPool2D(MaxPool2dOptions options);
  Tensor forward(const Tensor& x) override;
  std::string describe() const override;
  Shape output_shape(const Shape& input) const override;  // [C, H, W] -> [C, Hout, Wout]
  std::string to_line() const override;                   // maxpool2d KERNEL [stride=S] [padding=P]

  MaxPool2dOptions options;
};

}  // namespace tg
