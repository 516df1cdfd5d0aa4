// Optimizer: the base of SGD and friends. Holds parameter handles; step() updates their values in place.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "core/autograd/tensor.hpp"

namespace tg {

class Optimizer {
 public:
  explicit Optimizer(std::vector<Tensor> parameters);
  virtual ~Optimizer() = default;

  // Clears every parameter's gradient (call before backward, as in PyTorch).
  void zero_grad();
  // Applies one update from the current gradients. Never recorded on the tape.
  virtual void step() = 0;

  float lr() const { return lr_; }
  void set_lr(float lr);

  // The optimizer's state (e.g. momentum buffers) as named arrays, to save in a checkpoint and restore.
  virtual std::vector<std::pair<std::string, Array>> state() const { return {}; }
  virtual void load_state(const std::vector<std::pair<std::string, Array>>& state);

  const std::vector<Tensor>& parameters() const { return parameters_; }

 protected:
  std::vector<Tensor> parameters_;
  float lr_ = 0.f;
};

}  // namespace tg
