#include "layers/fusion.hpp"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <typeinfo>
#include <utility>

#include "core/autograd/tape.hpp"
#include "core/ops/fused.hpp"
#include "layers/activations.hpp"
#include "layers/batchnorm.hpp"
#include "layers/conv2d.hpp"
#include "layers/residual.hpp"

namespace tg {
namespace {

std::atomic<bool> g_fusion{[] {
  const char* v = std::getenv("TG_FUSION");
  return !(v && std::strcmp(v, "0") == 0);
}()};

const BatchNorm2d* eval_batch_norm(const Module& m) {
  const auto* bn = dynamic_cast<const BatchNorm2d*>(&m);
  return bn && !bn->is_training() ? bn : nullptr;
}

ConvActivation activation_of(const Module& m) {
  if (dynamic_cast<const ReLU*>(&m)) return ConvActivation::ReLU;
  if (dynamic_cast<const ReLU6*>(&m)) return ConvActivation::ReLU6;
  return ConvActivation::None;
}

thread_local ActivationAhead* t_ahead = nullptr;

}  // namespace

void set_fusion(bool on) { g_fusion.store(on); }
bool fusion_enabled() { return g_fusion.load(); }

namespace fusion {

bool allowed() { return g_fusion.load(std::memory_order_relaxed) && !grad_enabled(); }

std::size_t span(const Children& layers, std::size_t i) {
  if (dynamic_cast<const Residual*>(layers[i].second.get())) {
    return i + 1 < layers.size() && activation_of(*layers[i + 1].second) != ConvActivation::None ? 2 : 1;
  }
  const auto* conv = dynamic_cast<const Conv2D*>(layers[i].second.get());
  if (!conv) return 1;
  std::size_t n = 1;
  const BatchNorm2d* bn = i + n < layers.size() ? eval_batch_norm(*layers[i + n].second) : nullptr;
  if (bn && bn->channels == conv->out_channels) ++n;  // otherwise the batch norm's own error, unfused
  if (i + n < layers.size() && activation_of(*layers[i + n].second) != ConvActivation::None) ++n;
  return n;
}

bool takes_tail(const Children& layers, std::size_t i, std::size_t n) {
  return dynamic_cast<const Conv2D*>(layers[i].second.get()) &&
         activation_of(*layers[i + n - 1].second) == ConvActivation::None;
}

Tensor run(const Children& layers, std::size_t i, std::size_t n, const Tensor& x, const Tail* tail) {
  if (auto* residual = dynamic_cast<Residual*>(layers[i].second.get())) {
    return residual->forward_fused(x, activation_of(*layers[i + 1].second));
  }
  const auto& conv = static_cast<const Conv2D&>(*layers[i].second);
  ConvFollowers f;
  for (std::size_t j = i + 1; j < i + n; ++j) {
    if (const BatchNorm2d* bn = eval_batch_norm(*layers[j].second)) {
      f.bn_weight = bn->weight, f.bn_bias = bn->bias, f.bn_mean = bn->running_mean;
      f.bn_var = bn->running_var, f.bn_eps = bn->options.eps;
    } else {
      f.act = activation_of(*layers[j].second);
    }
  }
  if (tail) f.residual = tail->residual, f.act = tail->act;
  return conv.forward_fused(x, f);
}

ConvActivation training_activation(const Children& layers, std::size_t i) {
  if (i + 1 >= layers.size() || !g_fusion.load(std::memory_order_relaxed) || !grad_enabled() ||
      detect_anomaly())
    return ConvActivation::None;
  // exactly these four types: a subclass may override forward (fused_activation still checks it gets the
  // fused op's output)
  const Module &m = *layers[i].second, &next = *layers[i + 1].second;
  if (typeid(m) != typeid(Conv2D) && typeid(m) != typeid(BatchNorm2d)) return ConvActivation::None;
  if (typeid(next) == typeid(ReLU)) return ConvActivation::ReLU;
  if (typeid(next) == typeid(ReLU6)) return ConvActivation::ReLU6;
  return ConvActivation::None;
}

AheadScope::AheadScope(ActivationAhead& ahead) { t_ahead = &ahead; }
AheadScope::~AheadScope() { t_ahead = nullptr; }

ActivationAhead* take_ahead() { return std::exchange(t_ahead, nullptr); }

}  // namespace fusion
}  // namespace tg
