// Parameter-free layers: activations, Flatten, Dropout. Model-file lines: relu, sigmoid, tanh, softmax,
// logsoftmax, leakyrelu [slope=0.01], relu6, flatten, dropout [p=0.5].
#pragma once

#include "core/runtime/random.hpp"
#include "layers/module.hpp"

namespace tg {

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  Shape output_shape(const Shape& input) const override;
  std::string to_line() const override;
};

// min(max(x, 0), 6), as torch.nn.ReLU6.
class ReLU6 : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  Shape output_shape(const Shape& input) const override;
  std::string to_line() const override;
};

class LeakyReLU : public Module {
 public:
  explicit LeakyReLU(float negative_slope = 0.01f) : negative_slope(negative_slope) {}
  Tensor forward(const Tensor& x) override;
  Shape output_shape(const Shape& input) const override;
  std::string to_line() const override;
  std::string describe() const override;
  float negative_slope;
};

class Sigmoid : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  Shape output_shape(const Shape& input) const override;
  std::string to_line() const override;
};

class Tanh : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  Shape output_shape(const Shape& input) const override;
  std::string to_line() const override;
};

// Along the last axis.
class Softmax : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  Shape output_shape(const Shape& input) const override;
  std::string to_line() const override;
};

// Along the last axis.
class LogSoftmax : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  Shape output_shape(const Shape& input) const override;
  std::string to_line() const override;
};

// [N, ...] -> [N, prod(...)]
class Flatten : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  Shape output_shape(const Shape& input) const override;
  std::string to_line() const override;
};

// Training: zeroes each element with probability p, scales the rest by 1 / (1 - p). Eval: identity.
// Masks come from tg::default_generator() (seeded by tg::manual_seed).
class Dropout : public Module {
 public:
  explicit Dropout(float p = 0.5f);
  Tensor forward(const Tensor& x) override;
  Shape output_shape(const Shape& input) const override;
  std::string to_line() const override;
  std::string describe() const override;
  float p;
};

}  // namespace tg
