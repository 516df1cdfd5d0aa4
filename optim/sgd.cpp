#include "optim/sgd.hpp"

#include <cmath>

#include "core/base/error.hpp"
#include "core/runtime/threads.hpp"

namespace tg {
SGD::SGD(std::vector<Tensor> parameters, SGDOptions options)
    : Optimizer(std::move(parameters)), options_(options), momentum_buffers_(parameters_.size()) {
  set_lr(options.lr);
  if (!(options.momentum >= 0.f)) fail("SGD: momentum must be >= 0, got ", options.momentum);
  if (!(options.weight_decay >= 0.f)) fail("SGD: weight_decay must be >= 0, got ", options.weight_decay);
  if (options.nesterov && (options.momentum <= 0.f || options.dampening != 0.f)) {
    fail("SGD: nesterov needs momentum > 0 and dampening 0 (as in PyTorch), got momentum ", options.momentum,
         ", dampening ", options.dampening);
  }
}

void SGD::step() {
  const float lr = lr_, mu = options_.momentum, wd = options_.weight_decay, damp = options_.dampening;
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    Tensor& param = parameters_[i];
    Node& node = *param.node();
    if (node.grad.size() != node.value.size() || node.grad.shape() != node.value.shape())
      continue;  // no grad yet
    float* p = node.value.data();
    const float* grad = node.grad.data();
    const std::size_t n = node.value.size();
    if (mu == 0.f) {
      parallel_for(
          n,
          [&](std::size_t k0, std::size_t k1) {
            for (std::size_t k = k0; k < k1; ++k) p[k] -= lr * (grad[k] + wd * p[k]);
          },
          kElementGrain);
      continue;
    }
    Array& buffer = momentum_buffers_[i];
    const bool first = buffer.shape() != node.value.shape();
    if (first) buffer = Array::from_shape(node.value.shape());
    float* buf = buffer.data();
    const bool nesterov = options_.nesterov;
    parallel_for(
        n,
        [&](std::size_t k0, std::size_t k1) {
          for (std::size_t k = k0; k < k1; ++k) {
            const float g = grad[k] + wd * p[k];
            buf[k] = first ? g : mu * buf[k] + (1.f - damp) * g;
            p[k] -= lr * (nesterov ? g + mu * buf[k] : buf[k]);
          }
        },
        kElementGrain);
  }
}

std::vector<std::pair<std::string, Array>> SGD::state() const {
  std::vector<std::pair<std::string, Array>> out;
  for (std::size_t i = 0; i < momentum_buffers_.size(); ++i) {
    if (momentum_buffers_[i].shape() == parameters_[i].shape()) {
      out.emplace_back("momentum_buffer." + std::to_string(i), momentum_buffers_[i]);
    }
  }
  return out;
}

void SGD::load_state(const std::vector<std::pair<std::string, Array>>& state) {
  std::vector<Array> buffers(parameters_.size());
  for (const auto& [name, value] : state) {
    const std::string prefix = "momentum_buffer.";
    std::size_t index = 0;
    try {
      if (name.rfind(prefix, 0) != 0) throw std::invalid_argument(name);
      std::size_t used = 0;
      index = std::stoul(name.substr(prefix.size()), &used);
      if (used != name.size() - prefix.size()) throw std::invalid_argument(name);
    } catch (const std::exception&) {
      fail("SGD::load_state: unexpected entry '", name, "', expected momentum_buffer.<i>");
    }
    if (index >= parameters_.size()) {
      fail("SGD::load_state: '", name, "' but the optimizer has ", parameters_.size(), " parameters");
    }
    if (value.shape() != parameters_[index].shape()) {
      fail("SGD::load_state: '", name, "' has shape ", shape_str(value.shape()), ", parameter ", index,
           " has ", shape_str(parameters_[index].shape()));
    }
    buffers[index] = value;
  }
  momentum_buffers_ = std::move(buffers);
}

}  // namespace tg
