// int8 inference (docs/int8.md): post-training quantization of a trained model, at load, for eval and
// predict.
//
//   tg::Int8Model q(model, calibration_images);  // calibrates, folds batch norm, quantizes the weights
//   tg::Tensor logits = q(x);                    // the model's eval forward with int8 convs and linears
//
// What it does:
//   - Every Conv2D (dense, grouped, depthwise) and Linear runs with int8 weights, one symmetric scale per
//     output channel (max |w| / 127), and an unsigned 8-bit input, x ~ scale * (q - zero_point): zero point 0
//     for an input that is never negative (after a ReLU), an asymmetric range otherwise (the normalized
//     image, a linear after flatten of a pool of signed values). The products are summed exactly in int32
//     (vpdpbusd with AVX512_VNNI; the same sums in plain C++ without it).
//   - A batch norm in eval mode that follows a conv is folded into its weights and bias before quantizing;
//     the residual add and ReLU/ReLU6 that follow are applied to the float32 result in the same pass.
//   - Everything else runs in float32 on float32 tensors between the layers: pooling, flatten, softmax, and
//     any custom layer (it has no int8 path; report() lists it as fp32).
//   - Input ranges come from calibration: the model's float32 eval forward over the calibration images,
//     the min and max of each quantized layer's input over all of them (docs/int8.md: why max).
// The model's tensors are never changed: its checkpoint stays float32, and the model still runs in float32
// outside an Int8Model's forward.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/autograd/tensor.hpp"
#include "core/kernels/conv2d_int8.hpp"

namespace tg {

class Conv2D;
class Linear;
class Sequential;
struct ConvFollowers;

namespace int8 {

// What Conv2D::forward_fused, Conv2D::forward and Linear::forward consult while an Int8Model calibrates or
// runs on this thread: the layer's int8 result, or nothing (then the layer runs in float32 as always).
class Hook {
 public:
  virtual ~Hook() = default;
  virtual std::optional<Tensor> conv(const Conv2D& conv, const Tensor& x, const ConvFollowers& followers) = 0;
  virtual std::optional<Tensor> linear(const Linear& linear, const Tensor& x) = 0;
};
// This thread's hook, or null (the usual case: one thread_local read).
Hook* active();

}  // namespace int8

// One layer of an Int8Model, as report() gives it.
struct Int8LayerReport {
  std::string name;    // its path and type, "3.body.0.Conv2D"
  std::string source;  // its model-file location ("resnet20.tg:7"), or ""
  bool int8 = false;   // false: it runs in float32, for the reason in `why`
  std::string why;     // "" for an int8 layer
  bool folded_batch_norm = false;
  float min = 0, max = 0;  // its input's range over the calibration images, widened to hold 0
  Int8Quant input;         // the scale and zero point the range gives
  std::size_t seen = 0,
              clipped = 0;  // input values quantized by forward() so far, and those clipped to the range
  double clipped_share() const {
    return seen ? static_cast<double>(clipped) / static_cast<double>(seen) : 0.0;
  }
};

class Int8Model {
 public:
  // Calibrates on `calibration` [N, C, H, W] (normalized as the model takes its inputs; N >= 1), run through
  // `model` in eval mode batch_size images at a time, then quantizes. `model` is kept by reference and must
  // outlive this; it is left in eval mode. tg::Error for an empty calibration set or one of the wrong shape.
  Int8Model(Sequential& model, const Tensor& calibration, std::size_t batch_size = 256);
  ~Int8Model();
  Int8Model(const Int8Model&) = delete;
  Int8Model& operator=(const Int8Model&) = delete;

  // The model's eval forward (no gradients recorded) with its convs and linears in int8.
  Tensor forward(const Tensor& x);
  Tensor operator()(const Tensor& x) { return forward(x); }

  // Every conv and linear layer, and every other layer with parameters (custom layers: float32), in model
  // order.
  std::vector<Int8LayerReport> report() const;
  // Frees the float32 weight tensors of the layers that run in int8 (they become empty), so that the model's
  // weights take about a quarter of their float32 memory; returns the bytes freed. The model then runs only
  // through this Int8Model (forward() or a Scope): called alone, or while gradients are recorded, its int8
  // layers fail with tg::Error on their empty weights, and its state (save, named_state) is incomplete. What
  // `tapegrad eval --int8` and `predict --int8` do once quantized (the checkpoint file is not touched).
  std::size_t release_float_weights();
  // The int8 layers' packed weights and scales (with their float32 biases), and the same layers' float32
  // parameters (with those of the batch norms folded into them), in bytes.
  std::size_t int8_bytes() const;
  std::size_t fp32_bytes() const;

  // While a Scope lives, this thread's calls of the model (model(x), as tapegrad eval's loop makes them) run
  // as forward() does. Scopes nest; the innermost wins.
  class Scope {
   public:
    explicit Scope(Int8Model& m);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    int8::Hook* previous_;
  };

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace tg
