#include "optim/schedule.hpp"

#include <cmath>
#include <numbers>

#include "core/base/error.hpp"

namespace tg {

StepLR::StepLR(Optimizer& optimizer, std::size_t step_size, float gamma)
    : LRSchedule(optimizer), step_size_(step_size), gamma_(gamma) {
  if (step_size == 0) fail("StepLR: step_size must be >= 1");
  if (!(gamma > 0.f)) fail("StepLR: gamma must be > 0, got ", gamma);
  set_step(0);
}

float StepLR::lr_at(std::size_t step) const {
  return base_lr_ * std::pow(gamma_, static_cast<float>(step / step_size_));
}

CosineLR::CosineLR(Optimizer& optimizer, std::size_t total_steps, float min_lr, std::size_t warmup_steps)
    : LRSchedule(optimizer), total_(total_steps), warmup_(warmup_steps), min_lr_(min_lr) {
  if (total_steps == 0) fail("CosineLR: total_steps must be >= 1");
  if (warmup_steps >= total_steps)
    fail("CosineLR: warmup_steps (", warmup_steps, ") must be < total_steps (", total_steps, ")");
  if (!(min_lr >= 0.f)) fail("CosineLR: min_lr must be >= 0, got ", min_lr);
  set_step(0);  // the first step already runs at lr_at(0) (base / warmup_steps with a warm-up)
}

float CosineLR::lr_at(std::size_t step) const {
  if (step < warmup_) return base_lr_ * static_cast<float>(step + 1) / static_cast<float>(warmup_);
  if (step >= total_) return min_lr_;
  const double t = static_cast<double>(step - warmup_) / static_cast<double>(total_ - warmup_);
  return static_cast<float>(min_lr_ + (base_lr_ - min_lr_) * 0.5 * (1.0 + std::cos(std::numbers::pi * t)));
}

}  // namespace tg
