// Learning-rate schedules: call step() once per optimizer step (or per epoch, as you define the unit).
#pragma once

#include <cstddef>

#include "optim/optimizer.hpp"

namespace tg {

class LRSchedule {
 public:
  explicit LRSchedule(Optimizer& optimizer) : optimizer_(&optimizer), base_lr_(optimizer.lr()) {}
  virtual ~LRSchedule() = default;
  // Advances one unit and sets the optimizer's learning rate for the next one.
  void step() { set_step(step_ + 1); }
  // Jumps to `step` (e.g. when resuming) and sets the learning rate for it.
  void set_step(std::size_t step) {
    step_ = step;
    optimizer_->set_lr(lr_at(step));
  }
  std::size_t current_step() const { return step_; }
  virtual float lr_at(std::size_t step) const = 0;

 protected:
  Optimizer* optimizer_;
  float base_lr_;
  std::size_t step_ = 0;
};

// lr = base * gamma^(step / step_size), as torch.optim.lr_scheduler.StepLR.
class StepLR : public LRSchedule {
 public:
  StepLR(Optimizer& optimizer, std::size_t step_size, float gamma = 0.1f);
  float lr_at(std::size_t step) const override;

 private:
  std::size_t step_size_;
  float gamma_;
};

// lr = min + (base - min) (1 + cos(pi step / total)) / 2, then min after `total` steps, as CosineAnnealingLR.
// With warmup_steps > 0 the lr first rises linearly from base / warmup_steps to base, and the cosine runs
// over the remaining steps.
class CosineLR : public LRSchedule {
 public:
  CosineLR(Optimizer& optimizer, std::size_t total_steps, float min_lr = 0.f, std::size_t warmup_steps = 0);
  float lr_at(std::size_t step) const override;

 private:
  std::size_t total_, warmup_;
  float min_lr_;
};

}  // namespace tg
