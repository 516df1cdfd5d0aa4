// SGD with momentum, dampening, Nesterov and weight decay: PyTorch's torch.optim.SGD update, exactly.
#pragma once

#include "optim/optimizer.hpp"

namespace tg {

struct SGDOptions {
  float lr = 0.01f;
  float momentum = 0.f;
  float dampening = 0.f;
  float weight_decay = 0.f;
  bool nesterov = false;
};

// For each parameter p with gradient g:
//   g = g + weight_decay * p
//   if momentum: buf = g on the first step, else buf = momentum * buf + (1 - dampening) * g
//                g = nesterov ? g + momentum * buf : buf
//   p = p - lr * g
class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> parameters, SGDOptions options);
  void step() override;
  const SGDOptions& options() const { return options_; }

  // "momentum_buffer.<i>" for each parameter i that has one.
  std::vector<std::pair<std::string, Array>> state() const override;
  void load_state(const std::vector<std::pair<std::string, Array>>& state) override;

 private:
  SGDOptions options_;
  std::vector<Array> momentum_buffers_;  // empty until a parameter's first step
};

}  // namespace tg
