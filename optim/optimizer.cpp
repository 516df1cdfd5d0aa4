#include "optim/optimizer.hpp"

#include <cmath>

#include "core/base/error.hpp"

namespace tg {

Optimizer::Optimizer(std::vector<Tensor> parameters) : parameters_(std::move(parameters)) {
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    if (!parameters_[i].defined()) fail("Optimizer: parameter ", i, " is an undefined tensor");
  }
}

void Optimizer::zero_grad() {
  for (Tensor& p : parameters_) p.zero_grad();
}

void Optimizer::set_lr(float lr) {
  if (!(lr >= 0.f) || !std::isfinite(lr)) fail("Optimizer: learning rate must be finite and >= 0, got ", lr);
  lr_ = lr;
}

void Optimizer::load_state(const std::vector<std::pair<std::string, Array>>& state) {
  if (!state.empty())
    fail("Optimizer: this optimizer has no state, but ", state.size(), " entries were given");
}

}  // namespace tg
