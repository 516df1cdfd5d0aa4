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

  MaxPool2dOptions options;
};

}  // namespace tg
