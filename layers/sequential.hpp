// Sequential: runs its layers in order; layer i's parameters are named "i.weight", "i.bias" as in PyTorch.
#pragma once

#include <concepts>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "core/base/error.hpp"
#include "layers/fusion.hpp"
#include "layers/module.hpp"

namespace tg {

class Sequential : public Module {
 public:
  Sequential() = default;
  // Sequential(tg::Conv2D(1, 6, 5), tg::ReLU(), ...): each layer is moved in. (To nest a Sequential,
  // use add(): a lone Sequential argument would be a move.)
  template <class... Layers>
  requires(std::derived_from<std::decay_t<Layers>, Module>&&...) explicit Sequential(Layers&&... layers) {
    (add(std::forward<Layers>(layers)), ...);
  }

  // Appends a layer; returns it, typed.
  template <class Layer>
  requires std::derived_from<std::decay_t<Layer>, Module> std::decay_t<Layer>
  &add(Layer&& layer) {
    using T = std::decay_t<Layer>;
    return static_cast<T&>(add(std::make_unique<T>(std::forward<Layer>(layer))));
  }
  Module& add(std::unique_ptr<Module> layer);

  // Runs every layer. An error inside layer i is rethrown as tg::Error prefixed with
  // "layer i <description>: ", or "layer i <description> (<source>): " for a layer built from a model file.
  // Outputs are named "i.Type" (e.g. "3.Conv2D") for errors, dumps and the tape.
  Tensor forward(const Tensor& x) override;
  // forward() for a residual block's body in an inference pass (layers/fusion.hpp): when the last layers
  // form a conv pass without an activation, `tail` (the skip branch and the block's activation) is applied
  // in it and `applied` set; otherwise the output is forward()'s and `applied` stays false.
  Tensor forward_tail(const Tensor& x, const fusion::Tail& tail, bool& applied);
  std::string describe() const override;
  // Each layer's output_shape in turn; an error names the layer as forward() does.
  Shape output_shape(const Shape& input) const override;
  // "": a Sequential is a whole model file (model_to_text), not one line of one.
  std::string to_line() const override;

  std::size_t size() const { return children().size(); }
  Module& operator[](std::size_t i);
  const Module& operator[](std::size_t i) const;
  // Typed access: model.at<tg::Conv2D>(0).weight; tg::Error if layer i is not a T.
  template <class T>
  T& at(std::size_t i) {
    Module& m = (*this)[i];
    T* typed = dynamic_cast<T*>(&m);
    if (!typed) fail("Sequential::at: layer ", i, " is ", m.describe(), ", not the type asked for");
    return *typed;
  }

  // A table: each layer, its output shape for a batch of `input_shape` ([N, C, H, W] or [N, F]), its
  // parameter count, its model-file location ("lenet.tg:5") for a layer built from a model file (the column
  // appears when some layer has one), and the total. Shapes come from each layer's output_shape(): no forward
  // pass, nothing recorded on the tape, the model's mode untouched. (A custom layer that does not override
  // output_shape() is run by Module's default on zeros of batch 1.) An error names the layer as forward()
  // does.
  std::string summary(const Shape& input_shape) const;

  // One row of a summary: a layer at `depth` levels of nesting (a Residual's body and shortcut, a nested
  // Sequential, indented under it).
  struct SummaryRowData {
    std::string path;  // "3.body.0"
    std::size_t depth;
    std::string layer;  // describe()
    Shape shape;        // per example
    std::size_t parameters;
    std::string source;  // "net.tg:5", "net.tg:5 (copy 2 of 3)", or ""
  };
  // The rows of this Sequential's layers and of the layers nested in them, for a per-example input `shape`
  // (advanced to this Sequential's output); paths start with `prefix`.
  void summary_rows(const std::string& prefix, std::size_t depth, Shape& shape,
                    std::vector<SummaryRowData>& rows) const;

 private:
  Tensor run_layers(const Tensor& x, const fusion::Tail* tail, bool& applied);
};

}  // namespace tg
