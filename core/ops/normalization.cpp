// batch_norm2d: validation, the forward with its running-statistics update, its named backward.
#include "core/ops/normalization.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <utility>

#include "core/base/error.hpp"
#include "core/ops/fused.hpp"
#include "core/runtime/threads.hpp"

namespace tg {
namespace {

BatchNorm2dGeometry geometry(const Shape& s) { return {s[0], s[1], s[2] * s[3]}; }

void check_per_channel(const Tensor& t, const char* what, std::size_t channels, const Shape& x) {
  if (!t.defined() || t.dim() != 1 || t.shape()[0] != channels) {
    fail("batch_norm2d: expected ", what, " [", channels, "] for input ", shape_str(x), ", got ",
         t.defined() ? shape_str(t.shape()) : std::string("none"));
  }
}

// act(v) in place over out: the same float operations as relu and relu6 (ConvEpilogue's).
void activate_in_place(Array& out, ConvActivation act) {
  float* p = out.data();
  parallel_for(
      out.size(),
      [&](std::size_t i0, std::size_t i1) {
        if (act == ConvActivation::ReLU6) {
          for (std::size_t i = i0; i < i1; ++i) p[i] = p[i] < 0.f ? 0.f : (p[i] > 6.f ? 6.f : p[i]);
        } else {
          for (std::size_t i = i0; i < i1; ++i) p[i] = p[i] > 0.f ? p[i] : 0.f;
        }
      },
      kElementGrain);
}

// batch_norm2d, and with `ahead` (training fusion, fused.hpp) its activation in the same op.
Tensor batch_norm2d_op(const Tensor& x, const Tensor& weight, const Tensor& bias, const BatchNorm2dOptions& o,
                       ActivationAhead* ahead) {
  Tensor running_mean = o.running_mean, running_var = o.running_var;  // handles: writable values
  const Shape& s = x.shape();
  if (s.size() != 4) fail("batch_norm2d: expected input [N, C, H, W], got ", shape_str(s));
  if (!(o.eps > 0.f) || !std::isfinite(o.eps)) fail("batch_norm2d: eps must be > 0, got ", o.eps);
  if (!(o.momentum >= 0.f && o.momentum <= 1.f)) {
    fail("batch_norm2d: momentum must be in [0, 1], got ", o.momentum);
  }
  const std::size_t channels = s[1];
  check_per_channel(weight, "weight", channels, s);
  check_per_channel(bias, "bias", channels, s);
  if (running_mean.defined() != running_var.defined()) {
    fail("batch_norm2d: running_mean and running_var go together; got only one of them");
  }
  if (running_mean.defined() || !o.training) {
    check_per_channel(running_mean, "running_mean", channels, s);
    check_per_channel(running_var, "running_var", channels, s);
  }
  const BatchNorm2dGeometry g = geometry(s);
  if (o.training && g.count() < 2) {
    fail("batch_norm2d: Expected more than 1 value per channel when training, got input ", shape_str(s));
  }

  std::vector<float> mean(channels), var(channels), invstd(channels);
  const float* x_data = x.value().data();
  if (o.training) {
    batch_norm2d_lanes_stats(x_data, g, mean.data(), var.data());
    if (running_mean.defined()) {  // in place on the buffers' arrays: never on the tape
      const float unbiased = static_cast<float>(g.count()) / static_cast<float>(g.count() - 1);
      float* rm = running_mean.value().data();
      float* rv = running_var.value().data();
      for (std::size_t c = 0; c < channels; ++c) {
        rm[c] = (1.f - o.momentum) * rm[c] + o.momentum * mean[c];
        rv[c] = (1.f - o.momentum) * rv[c] + o.momentum * var[c] * unbiased;
      }
    }
  } else {
    std::copy(running_mean.value().begin(), running_mean.value().end(), mean.begin());
    std::copy(running_var.value().begin(), running_var.value().end(), var.begin());
  }
  for (std::size_t c = 0; c < channels; ++c) invstd[c] = 1.f / std::sqrt(var[c] + o.eps);

  Array out = Array::from_shape(s);
  batch_norm2d_lanes_forward(x_data, g, mean.data(), invstd.data(), weight.value().data(),
                             bias.value().data(), out.data());
  // the statistics live as long as the tape entry (in the backward lambda); x and weight are its inputs
  auto saved = std::make_shared<const std::pair<std::vector<float>, std::vector<float>>>(std::move(mean),
                                                                                         std::move(invstd));
  const bool training = o.training;
  auto backward = [x, weight, saved, training](const Array& dout) {
    return batch_norm2d_backward(dout, x.value(), weight.value(), saved->first, saved->second, training);
  };
  if (!ahead) return make_op("batch_norm2d", std::move(out), {x, weight, bias}, std::move(backward));
  activate_in_place(out, ahead->act);
  ahead->activated = std::move(out);
  ahead->fused = true;
  // the forward again from x and the saved statistics (the running ones are not touched twice)
  auto recompute = [x, weight, bias, saved, g] {
    Array y = Array::from_shape(x.shape());
    batch_norm2d_lanes_forward(x.value().data(), g, saved->first.data(), saved->second.data(),
                               weight.value().data(), bias.value().data(), y.data());
    return y;
  };
  Tensor y =
      make_unstored_op("batch_norm2d", s, std::move(recompute), {x, weight, bias}, std::move(backward));
  ahead->output = y.node();
  return y;
}

}  // namespace

Tensor batch_norm2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const BatchNorm2dOptions& o) {
  return batch_norm2d_op(x, weight, bias, o, nullptr);
}

Tensor batch_norm2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const BatchNorm2dOptions& o,
                    ActivationAhead& ahead) {
  ahead.fused = false;
  const bool fuse = ahead.act != ConvActivation::None && x.defined() && weight.defined() && bias.defined() &&
                    records({x, weight, bias});
  return batch_norm2d_op(x, weight, bias, o, fuse ? &ahead : nullptr);
}

std::vector<Array> batch_norm2d_backward(const Array& dout, const Array& x, const Array& weight,
                                         const std::vector<float>& mean, const std::vector<float>& invstd,
                                         bool training) {
  const BatchNorm2dGeometry g = geometry(x.shape());
  Array dx = Array::from_shape(x.shape());
  Array dweight = Array::from_shape({g.c}), dbias = Array::from_shape({g.c});
  batch_norm2d_lanes_backward(dout.data(), x.data(), g, mean.data(), invstd.data(), weight.data(), training,
                              dx.data(), dweight.data(), dbias.data());
  return gradients(std::move(dx), std::move(dweight), std::move(dbias));
}

}  // namespace tg
