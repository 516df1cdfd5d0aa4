// Fusion (docs/fusion.md). Inference: in eval mode with no gradients recorded (tapegrad eval and predict,
// tg::NoGradGuard), a Sequential runs Conv2D -> BatchNorm2d -> ReLU/ReLU6 (or Conv2D -> ReLU/ReLU6, or
// Conv2D -> BatchNorm2d) as one pass, tg::conv2d_fused; a Residual adds its skip branch (and applies the
// activation that follows the block) in the pass of its body's last conv. Training (gradients recorded): a
// Conv2D or BatchNorm2d followed by ReLU/ReLU6 computes the activation in its own pass, each layer still
// recording its own tape entry (tg::ActivationAhead); anomaly detection turns that off.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/autograd/tensor.hpp"
#include "core/kernels/conv2d.hpp"
#include "core/ops/fused.hpp"
#include "layers/module.hpp"

namespace tg {

// On by default; TG_FUSION=0 in the environment turns it off at start-up (to stop in BatchNorm2d::forward
// during `tapegrad predict`, or to see each layer's output). Process-wide.
void set_fusion(bool on);
bool fusion_enabled();

namespace fusion {

using Children = std::vector<std::pair<std::string, std::unique_ptr<Module>>>;

// What a residual block hands to the last pass of its body: the skip branch to add and the activation that
// follows the block.
struct Tail {
  Tensor residual;
  ConvActivation act = ConvActivation::None;
};

// How many layers from `i` run as one fused pass when the mode allows it: 1 (none), 2 or 3. A conv with
// what follows it, or a Residual with the activation after it.
std::size_t span(const Children& layers, std::size_t i);
// Whether the pass [i, i + n) can also take a Tail: a conv pass without an activation of its own.
bool takes_tail(const Children& layers, std::size_t i, std::size_t n);
// Whether the calling thread may fuse now: fusion on and no gradients recorded.
bool allowed();
// The fused pass of layers [i, i + n) on x (n from span()), with `tail` applied last when given.
Tensor run(const Children& layers, std::size_t i, std::size_t n, const Tensor& x, const Tail* tail = nullptr);

// Training fusion: the activation that layer i + 1 applies when layers i and i + 1 run as one pass now
// (fusion on, gradients recorded, no anomaly detection, layer i a Conv2D or BatchNorm2d, layer i + 1 a ReLU
// or ReLU6), else ConvActivation::None.
ConvActivation training_activation(const Children& layers, std::size_t i);
// While alive, the next Conv2D::forward or BatchNorm2d::forward on this thread (the layer Sequential calls
// next) computes `ahead.act` in its pass: it takes `ahead` with take_ahead(), once.
class AheadScope {
 public:
  explicit AheadScope(ActivationAhead& ahead);
  ~AheadScope();
  AheadScope(const AheadScope&) = delete;
  AheadScope& operator=(const AheadScope&) = delete;
};
// The ActivationAhead an AheadScope offers, cleared as it is taken (a layer called inside gets none); null
// when there is none.
ActivationAhead* take_ahead();

}  // namespace fusion
}  // namespace tg
