// MaxPool2D, AvgPool2D: max / mean over windows of each channel, as nn.MaxPool2d / nn.AvgPool2d (stride
// defaults to the kernel); GlobalAvgPool2D: the mean of each channel, [N, C, H, W] -> [N, C].
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

// Padded cells are zeros that count in the divisor (nn.AvgPool2d's default, count_include_pad=True).
class AvgPool2D : public Module {
 public:
  explicit AvgPool2D(int kernel) : AvgPool2D(AvgPool2dOptions{.kernel = {kernel, kernel}}) {}
  explicit AvgPool2D(AvgPool2dOptions options);
  Tensor forward(const Tensor& x) override;
  std::string describe() const override;
  Shape output_shape(const Shape& input) const override;  // [C, H, W] -> [C, Hout, Wout]
  std::string to_line() const override;                   // avgpool2d KERNEL [stride=S] [padding=P]

  AvgPool2dOptions options;
};

// nn.AdaptiveAvgPool2d(1) followed by nn.Flatten(): the classifier head of all-convolutional networks.
class GlobalAvgPool2D : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  Shape output_shape(const Shape& input) const override;  // [C, H, W] -> [C]
  std::string to_line() const override;                   // globalavgpool2d
};

}  // namespace tg
