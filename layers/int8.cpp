// Int8Model (int8.hpp): calibration through the layers' hook, then the int8 forward through the same hook.
#include "layers/int8.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>
#include <utility>

#include "core/autograd/tape.hpp"
#include "core/base/error.hpp"
#include "core/ops/fused.hpp"
#include "layers/batchnorm.hpp"
#include "layers/conv2d.hpp"
#include "layers/linear.hpp"
#include "layers/residual.hpp"
#include "layers/sequential.hpp"

namespace tg {
namespace int8 {
namespace {
thread_local Hook* t_hook = nullptr;
}  // namespace

Hook* active() { return t_hook; }

}  // namespace int8

namespace int8_model {  // named: Int8Model::Impl holds its types

// One conv or linear layer: its calibration, then its int8 form.
struct Entry {
  Int8LayerReport report;
  const Conv2D* conv = nullptr;
  const Linear* linear = nullptr;
  // Calibration: the input's range, and the batch norm the conv's pass carried (folded when quantizing).
  bool reached = false;
  float min = std::numeric_limits<float>::infinity(), max = -std::numeric_limits<float>::infinity();
  bool finite = true;
  Tensor bn_weight, bn_bias, bn_mean, bn_var;
  float bn_eps = 1e-5f;
  // The int8 form.
  Shape weight_shape;                // a conv's [Cout, Cin/G, Kh, Kw] (its tensor may be released)
  Conv2dInt8Weights weights;         // a conv's
  LinearInt8Weights linear_weights;  // a linear layer's
  Tensor bias;                       // with the batch norm folded in; undefined for none
};

// The range [min, max] (widened to hold 0: padding and ReLU's zeros are exact) as a u8 scale and zero point.
Int8Quant quant_of(float lo, float hi) {
  lo = std::min(lo, 0.f), hi = std::max(hi, 0.f);
  if (hi - lo <= 0.f) return {1.f, 0};
  Int8Quant q;
  q.scale = (hi - lo) / 255.f;
  q.zero_point = std::clamp(static_cast<int>(std::nearbyint(-lo / q.scale)), 0, 255);
  return q;
}

}  // namespace int8_model

struct Int8Model::Impl {
  Sequential* model = nullptr;
  std::vector<int8_model::Entry> entries;                // model order
  std::vector<Int8LayerReport> fp32_layers;              // other layers with parameters
  std::unordered_map<const Module*, std::size_t> index;  // layer -> entries[i]
  std::unique_ptr<int8::Hook> runner;                    // what a Scope installs

  int8_model::Entry* find(const Module* m) {
    const auto it = index.find(m);
    return it == index.end() ? nullptr : &entries[it->second];
  }

  // Every layer under `m` (Sequentials and residual blocks nest), named by its path as the tape names it
  // ("3.body.0.Conv2D").
  void walk(const Module& m, const std::string& prefix) {
    if (const auto* seq = dynamic_cast<const Sequential*>(&m)) {
      for (std::size_t i = 0; i < seq->size(); ++i) add((*seq)[i], prefix + std::to_string(i));
    } else if (const auto* block = dynamic_cast<const Residual*>(&m)) {
      add(block->body(), prefix + "body");
      if (block->has_shortcut()) add(block->shortcut(), prefix + "shortcut");
    }
  }
  void add(const Module& child, const std::string& path) {
    Int8LayerReport r;
    r.name = path + "." + child.type_name();
    r.source = child.source_location();
    if (const auto* conv = dynamic_cast<const Conv2D*>(&child)) {
      index[&child] = entries.size();
      entries.emplace_back();
      entries.back().report = r, entries.back().conv = conv;
    } else if (const auto* linear = dynamic_cast<const Linear*>(&child)) {
      index[&child] = entries.size();
      entries.emplace_back();
      entries.back().report = r, entries.back().linear = linear;
    } else if (dynamic_cast<const Sequential*>(&child) || dynamic_cast<const Residual*>(&child)) {
      walk(child, path + ".");
    } else if (!child.parameters().empty() && !dynamic_cast<const BatchNorm2d*>(&child)) {
      r.why = "no int8 path (" + child.describe() + "): runs in float32";
      fp32_layers.push_back(r);
    }
  }

  void quantize(int8_model::Entry& e) {
    if (!e.reached) {
      e.report.why = "not reached by the calibration forward: runs in float32";
      return;
    }
    if (!e.finite) {
      e.report.why = "its input was not finite on a calibration image: runs in float32";
      return;
    }
    e.report.min = std::min(e.min, 0.f), e.report.max = std::max(e.max, 0.f);
    e.report.input = int8_model::quant_of(e.min, e.max);
    if (e.linear) {
      const Linear& l = *e.linear;
      e.linear_weights = pack_linear_int8(l.weight.value().data(), l.out_features, l.in_features);
      e.bias = l.bias;
    } else {
      const Conv2D& c = *e.conv;
      const Shape ws = c.weight.shape();
      e.weight_shape = ws;
      const Conv2dGeometry g = conv2d_geometry(Shape{1, c.in_channels, ws[2] * 8, ws[3] * 8}, ws, c.options);
      if (e.bn_weight
              .defined()) {  // fold: w' = w * s, b' = (b - mean) * s + beta, s = gamma / sqrt(var + eps)
        const std::size_t co = c.out_channels, row = ws[1] * ws[2] * ws[3];
        std::vector<float> w(c.weight.value().data(), c.weight.value().data() + co * row);
        Array b = Array::from_shape({co});
        const float *gamma = e.bn_weight.value().data(), *beta = e.bn_bias.value().data();
        const float *mean = e.bn_mean.value().data(), *var = e.bn_var.value().data();
        for (std::size_t o = 0; o < co; ++o) {
          const float s = gamma[o] * (1.f / std::sqrt(var[o] + e.bn_eps));
          for (std::size_t i = 0; i < row; ++i) w[o * row + i] *= s;
          const float b0 = c.bias.defined() ? c.bias.value().data()[o] : 0.f;
          b.data()[o] = (b0 - mean[o]) * s + beta[o];
        }
        e.weights = pack_conv2d_int8(w.data(), g);
        e.bias = Tensor(std::move(b));
        e.report.folded_batch_norm = true;
      } else {
        e.weights = pack_conv2d_int8(c.weight.value().data(), g);
        e.bias = c.bias;
      }
    }
    e.report.int8 = true;
  }
};

namespace {

void observe(int8_model::Entry& e, const Tensor& x) {
  e.reached = true;
  const float* v = x.value().data();
  const std::size_t n = x.numel();
  float lo = e.min, hi = e.max;
  bool finite = true;
  for (std::size_t i = 0; i < n; ++i) {
    lo = std::min(lo, v[i]), hi = std::max(hi, v[i]);
    finite = finite && std::isfinite(v[i]);
  }
  e.min = lo, e.max = hi, e.finite = e.finite && finite;
}

class Calibrator final : public int8::Hook {
 public:
  explicit Calibrator(Int8Model::Impl& m) : m_(m) {}
  std::optional<Tensor> conv(const Conv2D& conv, const Tensor& x, const ConvFollowers& f) override {
    if (int8_model::Entry* e = m_.find(&conv)) {
      observe(*e, x);
      e->bn_weight = f.bn_weight, e->bn_bias = f.bn_bias, e->bn_mean = f.bn_mean, e->bn_var = f.bn_var;
      e->bn_eps = f.bn_eps;
    }
    return std::nullopt;
  }
  std::optional<Tensor> linear(const Linear& linear, const Tensor& x) override {
    if (int8_model::Entry* e = m_.find(&linear)) observe(*e, x);
    return std::nullopt;
  }

 private:
  Int8Model::Impl& m_;
};

class Runner final : public int8::Hook {
 public:
  explicit Runner(Int8Model::Impl& m) : m_(m) {}
  std::optional<Tensor> conv(const Conv2D& conv, const Tensor& x, const ConvFollowers& f) override {
    int8_model::Entry* e = m_.find(&conv);
    // The pass must be the one calibrated: with its batch norm folded, or without one.
    if (!e || !e->report.int8 || grad_enabled() || f.bn_weight.defined() != e->report.folded_batch_norm)
      return std::nullopt;
    e->report.seen += x.numel();
    return conv2d_int8(x, e->weights, e->weight_shape, conv.options, e->report.input, e->bias, f.residual,
                       f.act, &e->report.clipped);
  }
  std::optional<Tensor> linear(const Linear& linear, const Tensor& x) override {
    int8_model::Entry* e = m_.find(&linear);
    if (!e || !e->report.int8 || grad_enabled()) return std::nullopt;
    e->report.seen += x.numel();
    return linear_int8(x, e->linear_weights, e->report.input, e->bias, ConvActivation::None,
                       &e->report.clipped);
  }

 private:
  Int8Model::Impl& m_;
};

// Sets this thread's hook for a scope.
class HookScope {
 public:
  explicit HookScope(int8::Hook* h) : previous_(int8::t_hook) { int8::t_hook = h; }
  ~HookScope() { int8::t_hook = previous_; }
  HookScope(const HookScope&) = delete;
  HookScope& operator=(const HookScope&) = delete;

 private:
  int8::Hook* previous_;
};

}  // namespace

Int8Model::Int8Model(Sequential& model, const Tensor& calibration, std::size_t batch_size)
    : impl_(std::make_unique<Impl>()) {
  impl_->model = &model;
  if (calibration.dim() < 2 || calibration.shape()[0] == 0)
    fail("int8: the calibration images must be a batch [N, ...] with N >= 1, got ",
         shape_str(calibration.shape()));
  impl_->walk(model, "");
  model.eval();
  NoGradGuard no_grad;
  Calibrator calibrator(*impl_);
  {
    const HookScope scope(&calibrator);
    const std::size_t n = calibration.shape()[0], step = std::max<std::size_t>(batch_size, 1);
    const std::size_t per_image = calibration.numel() / n;
    for (std::size_t i = 0; i < n; i += step) {
      Shape shape = calibration.shape();
      shape[0] = std::min(step, n - i);
      Array batch = Array::from_shape(shape);
      std::copy_n(calibration.value().data() + i * per_image, shape[0] * per_image, batch.data());
      model(Tensor(std::move(batch)));
    }
  }
  for (int8_model::Entry& e : impl_->entries) impl_->quantize(e);
  impl_->runner = std::make_unique<Runner>(*impl_);
}

Int8Model::~Int8Model() = default;

Tensor Int8Model::forward(const Tensor& x) {
  impl_->model->eval();
  NoGradGuard no_grad;
  const Scope scope(*this);
  return (*impl_->model)(x);
}

std::size_t Int8Model::release_float_weights() {
  std::size_t freed = 0;
  for (int8_model::Entry& e : impl_->entries) {
    if (!e.report.int8) continue;
    Tensor w = e.conv ? e.conv->weight : e.linear->weight;
    freed += w.numel() * sizeof(float);
    w.value() = Array::from_shape({0});
  }
  return freed;
}

std::vector<Int8LayerReport> Int8Model::report() const {
  std::vector<Int8LayerReport> out;
  for (const int8_model::Entry& e : impl_->entries) out.push_back(e.report);
  out.insert(out.end(), impl_->fp32_layers.begin(), impl_->fp32_layers.end());
  return out;
}

std::size_t Int8Model::int8_bytes() const {
  std::size_t n = 0;
  for (const int8_model::Entry& e : impl_->entries)
    if (e.report.int8)
      n += e.weights.bytes() + e.linear_weights.bytes() +
           (e.bias.defined() ? e.bias.numel() * sizeof(float) : 0);
  return n;
}

std::size_t Int8Model::fp32_bytes() const {
  std::size_t n = 0;
  for (const int8_model::Entry& e : impl_->entries) {
    if (!e.report.int8) continue;
    std::size_t weights = e.linear ? e.linear->in_features * e.linear->out_features : 1;
    if (e.conv)
      for (std::size_t d : e.weight_shape) weights *= d;
    const Tensor& bias = e.conv ? e.conv->bias : e.linear->bias;
    n += (weights + (bias.defined() ? bias.numel() : 0)) * sizeof(float);
    if (e.report.folded_batch_norm) n += 4 * e.bn_weight.numel() * sizeof(float);
  }
  return n;
}

Int8Model::Scope::Scope(Int8Model& m) : previous_(int8::t_hook) { int8::t_hook = m.impl_->runner.get(); }

Int8Model::Scope::~Scope() { int8::t_hook = previous_; }

}  // namespace tg
