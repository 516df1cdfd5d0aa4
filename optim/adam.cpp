#include "optim/adam.hpp"

#include <cmath>
#include <string>

#include "core/base/error.hpp"
#include "core/runtime/threads.hpp"

namespace tg {
namespace {

// One step's per-parameter scalars, rounded to float as PyTorch's kernels take them.
struct AdamScalars {
  float beta1, beta2, one_minus_beta1, one_minus_beta2;
  float l2;                     // Adam's weight decay (0 for AdamW or none)
  float decay;                  // AdamW's factor 1 - lr * weight_decay (1 for Adam)
  float neg_step_size;          // -lr / (1 - beta1^step)
  float bias_correction2_sqrt;  // sqrt(1 - beta2^step)
  float eps;
};

// p, grad, m, v: [n]. The expression order is _single_tensor_adam(w)'s: exp_avg.mul_(beta1).add_(grad,
// alpha=1 - beta1), exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2), denom =
// (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps), param.addcdiv_(exp_avg, denom, value=-step_size).
void adam_update(const AdamScalars& s, float* p, const float* grad, float* m, float* v, std::size_t n) {
  const bool l2 = s.l2 != 0.f, decoupled = s.decay != 1.f;
  parallel_for(
      n,
      [&](std::size_t k0, std::size_t k1) {
        for (std::size_t k = k0; k < k1; ++k) {
          float g = grad[k];
          if (l2) g = std::fma(p[k], s.l2, g);
          if (decoupled) p[k] *= s.decay;
          m[k] = std::fma(s.one_minus_beta1, g, m[k] * s.beta1);
          v[k] = std::fma(s.one_minus_beta2 * g, g, v[k] * s.beta2);
          const float denom = std::sqrt(v[k]) / s.bias_correction2_sqrt + s.eps;
          p[k] = p[k] + s.neg_step_size * m[k] / denom;
        }
      },
      kElementGrain);
}

void check_option(const char* optimizer, const char* what, float value, bool ok, const char* expected) {
  if (!ok || !std::isfinite(value)) fail(optimizer, ": ", what, " must be ", expected, ", got ", value);
}

// "exp_avg_sq.3" -> ("exp_avg_sq", 3); false unless it is <name>.<decimal index>.
bool split_state_name(const std::string& entry, std::string& kind, std::size_t& index) {
  const std::size_t dot = entry.rfind('.');
  if (dot == std::string::npos || dot + 1 == entry.size()) return false;
  index = 0;
  for (std::size_t i = dot + 1; i < entry.size(); ++i) {
    if (entry[i] < '0' || entry[i] > '9' || index > 1'000'000'000) return false;
    index = index * 10 + static_cast<std::size_t>(entry[i] - '0');
  }
  kind = entry.substr(0, dot);
  return kind == "exp_avg" || kind == "exp_avg_sq" || kind == "step";
}

}  // namespace

AdamBase::AdamBase(std::vector<Tensor> parameters, AdamOptions options, bool decoupled, const char* name)
    : Optimizer(std::move(parameters)),
      options_(options),
      decoupled_(decoupled),
      name_(name),
      exp_avg_(parameters_.size()),
      exp_avg_sq_(parameters_.size()),
      steps_(parameters_.size(), 0.f) {
  check_option(name, "lr", options.lr, options.lr >= 0.f, "finite and >= 0");
  check_option(name, "eps", options.eps, options.eps >= 0.f, "finite and >= 0");
  check_option(name, "beta1", options.beta1, options.beta1 >= 0.f && options.beta1 < 1.f, "in [0, 1)");
  check_option(name, "beta2", options.beta2, options.beta2 >= 0.f && options.beta2 < 1.f, "in [0, 1)");
  check_option(name, "weight_decay", options.weight_decay, options.weight_decay >= 0.f, "finite and >= 0");
  set_lr(options.lr);
}

Adam::Adam(std::vector<Tensor> parameters, AdamOptions options)
    : AdamBase(std::move(parameters), options, /*decoupled=*/false, "Adam") {}

AdamW::AdamW(std::vector<Tensor> parameters, AdamWOptions o)
    : AdamBase(std::move(parameters),
               {.lr = o.lr, .beta1 = o.beta1, .beta2 = o.beta2, .eps = o.eps, .weight_decay = o.weight_decay},
               /*decoupled=*/true, "AdamW") {}

void AdamBase::step() {
  // PyTorch's scalars are Python floats (double): each is computed in double and rounded to float once.
  const double lr = lr_, beta1 = options_.beta1, beta2 = options_.beta2, wd = options_.weight_decay;
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    Node& node = *parameters_[i].node();
    if (node.grad.size() != node.value.size() || node.grad.shape() != node.value.shape())
      continue;  // no grad yet
    if (exp_avg_[i].shape() != node.value.shape()) {
      exp_avg_[i] = xt::zeros<float>(node.value.shape());
      exp_avg_sq_[i] = xt::zeros<float>(node.value.shape());
    }
    steps_[i] += 1.f;
    const double step = steps_[i];
    const AdamScalars s{
        .beta1 = options_.beta1,
        .beta2 = options_.beta2,
        .one_minus_beta1 = static_cast<float>(1.0 - beta1),
        .one_minus_beta2 = static_cast<float>(1.0 - beta2),
        .l2 = decoupled_ ? 0.f : options_.weight_decay,
        .decay = decoupled_ ? static_cast<float>(1.0 - lr * wd) : 1.f,
        .neg_step_size = static_cast<float>(-(lr / (1.0 - std::pow(beta1, step)))),
        .bias_correction2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(beta2, step))),
        .eps = options_.eps,
    };
    adam_update(s, node.value.data(), node.grad.data(), exp_avg_[i].data(), exp_avg_sq_[i].data(),
                node.value.size());
  }
}

std::vector<std::pair<std::string, Array>> AdamBase::state() const {
  std::vector<std::pair<std::string, Array>> out;
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    if (steps_[i] == 0.f) continue;
    const std::string index = std::to_string(i);
    Array step(steps_[i]);  // 0-d
    out.emplace_back("exp_avg." + index, exp_avg_[i]);
    out.emplace_back("exp_avg_sq." + index, exp_avg_sq_[i]);
    out.emplace_back("step." + index, std::move(step));
  }
  return out;
}

void AdamBase::load_state(const std::vector<std::pair<std::string, Array>>& state) {
  const std::size_t n = parameters_.size();
  std::vector<Array> exp_avg(n), exp_avg_sq(n);
  std::vector<float> steps(n, 0.f);
  std::vector<int> seen(n, 0);  // bits: 1 exp_avg, 2 exp_avg_sq, 4 step
  for (const auto& [entry, value] : state) {
    std::string kind;
    std::size_t i = 0;
    if (!split_state_name(entry, kind, i)) {
      fail(name_, "::load_state: unexpected entry '", entry,
           "', expected exp_avg.<i>, exp_avg_sq.<i> and step.<i> (the state of an ", name_, ")");
    }
    if (i >= n) fail(name_, "::load_state: '", entry, "' but the optimizer has ", n, " parameters");
    const int bit = kind == "exp_avg" ? 1 : kind == "exp_avg_sq" ? 2 : 4;
    if (seen[i] & bit) fail(name_, "::load_state: '", entry, "' is given twice");
    seen[i] |= bit;
    if (kind == "step") {
      const float step = value.size() == 1 ? *value.data() : 0.f;
      if (value.dimension() != 0 || !(step >= 1.f) || !std::isfinite(step) || step != std::floor(step)) {
        fail(name_, "::load_state: '", entry, "' must be a 0-d whole number >= 1, got shape ",
             shape_str(value.shape()), value.size() == 1 ? " value " + std::to_string(step) : std::string());
      }
      steps[i] = step;
      continue;
    }
    if (value.shape() != parameters_[i].shape()) {
      fail(name_, "::load_state: '", entry, "' has shape ", shape_str(value.shape()), ", parameter ", i,
           " has ", shape_str(parameters_[i].shape()));
    }
    (kind == "exp_avg" ? exp_avg : exp_avg_sq)[i] = value;
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (seen[i] != 0 && seen[i] != 7) {
      fail(name_, "::load_state: parameter ", i, " has", (seen[i] & 1) ? " exp_avg" : "",
           (seen[i] & 2) ? " exp_avg_sq" : "", (seen[i] & 4) ? " step" : "",
           " but not all of exp_avg, exp_avg_sq and step");
    }
  }
  exp_avg_ = std::move(exp_avg);
  exp_avg_sq_ = std::move(exp_avg_sq);
  steps_ = std::move(steps);
}

}  // namespace tg
