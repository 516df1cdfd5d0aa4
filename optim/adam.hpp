// Adam and AdamW: PyTorch 1.13's torch.optim.Adam and torch.optim.AdamW updates (amsgrad, maximize,
// capturable off), with PyTorch's float/double rounding, so that trajectories match it to the last bit.
#pragma once

#include "optim/optimizer.hpp"

namespace tg {

struct AdamOptions {
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.f;  // Adam: L2, added to the gradient
};

struct AdamWOptions {
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 1e-2f;  // AdamW: decoupled, shrinks the parameter (PyTorch's default 1e-2)
};

// For each parameter p with gradient g (a parameter without a gradient is skipped and its step stays):
//   step = step + 1
//   Adam:  g = g + weight_decay * p               AdamW: p = p * (1 - lr * weight_decay)
//   m = beta1 * m + (1 - beta1) * g               (m, v start at 0)
//   v = beta2 * v + (1 - beta2) * g * g
//   p = p - lr / (1 - beta1^step) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps)     (eps outside the root)
// As in PyTorch, the scalar factors are computed in double and rounded to float once, and the moment
// updates use fused multiply-adds (as PyTorch's CPU kernels do on an FMA machine).
// Both need 0 <= lr, 0 <= eps, 0 <= beta1, beta2 < 1 and 0 <= weight_decay, all finite.
class AdamBase : public Optimizer {
 public:
  void step() override;
  // AdamW's options are held in the same struct; weight_decay is then the decoupled one.
  const AdamOptions& options() const { return options_; }

  // Per parameter i that has taken a step: "exp_avg.<i>" and "exp_avg_sq.<i>" (the parameter's shape) and
  // "step.<i>" (a 0-d float, as PyTorch's state["step"]).
  std::vector<std::pair<std::string, Array>> state() const override;
  // Takes exactly what state() gives (of an optimizer of the same parameters); tg::Error, and no change,
  // for an unknown name, an index or shape that does not fit, a step that is not a whole number >= 1, or a
  // parameter with some of its three entries but not all.
  void load_state(const std::vector<std::pair<std::string, Array>>& state) override;

 protected:
  AdamBase(std::vector<Tensor> parameters, AdamOptions options, bool decoupled, const char* name);

 private:
  AdamOptions options_;
  bool decoupled_;    // AdamW
  const char* name_;  // "Adam" or "AdamW", for errors
  // Per parameter; empty (and step 0) until its first step.
  std::vector<Array> exp_avg_, exp_avg_sq_;
  std::vector<float> steps_;  // a float like PyTorch's step tensor, so that it saves exactly
};

class Adam final : public AdamBase {
 public:
  Adam(std::vector<Tensor> parameters, AdamOptions options);
};

class AdamW final : public AdamBase {
 public:
  AdamW(std::vector<Tensor> parameters, AdamWOptions options);
};

}  // namespace tg
