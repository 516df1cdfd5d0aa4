// Inference fusion (docs/fusion.md): in eval mode with no gradients recorded (tapegrad eval and predict,
// tg::NoGradGuard), a Sequential runs Conv2D -> BatchNorm2d -> ReLU/ReLU6 (or Conv2D -> ReLU/ReLU6, or
// Conv2D -> BatchNorm2d) as one pass, tg::conv2d_fused; a Residual adds its skip branch (and applies the
// activation that follows the block) in the pass of its body's last conv. Training and anything that records
// a tape run each layer on its own.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/autograd/tensor.hpp"
#include "core/kernels/conv2d.hpp"
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

}  // namespace fusion
}  // namespace tg
