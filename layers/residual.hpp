// tg::Residual: a skip connection around a Sequential, body(x) + x, or body(x) + shortcut(x) with a shortcut
// Sequential (e.g. a strided 1x1 conv and batch norm where the body changes the shape). The add never
// broadcasts. State keys nest as in PyTorch: a Residual at index 3 of a Sequential holds "3.body.0.weight",
// ..., "3.shortcut.0.weight" (the state_dict of the PyTorch Residual class in docs/model-files.md: self.body,
// self.shortcut). Model-file block: `residual` ... [`shortcut` ...] `end` (layers/model_file.hpp).
#pragma once

#include <string>

#include "layers/sequential.hpp"

namespace tg {

class Residual : public Module {
 public:
  // forward: body(x) + x. tg::Error for an empty body.
  explicit Residual(Sequential body);
  // forward: body(x) + shortcut(x). tg::Error for an empty body or shortcut (the identity is Residual(body)).
  Residual(Sequential body, Sequential shortcut);

  // body(x) + x or body(x) + shortcut(x); tg::Error naming both shapes when they differ. The identity branch
  // is x itself: the add reads the block's input, nothing copies it.
  Tensor forward(const Tensor& x) override;
  // The inference pass (layers/fusion.hpp): act(body(x) + skip), the add and `act` done by the body's last
  // conv pass where it can. forward() runs it when fusion is allowed, with no activation.
  Tensor forward_fused(const Tensor& x, ConvActivation act);
  // The body's output shape; tg::Error naming both shapes when the shortcut's (or the input, for the
  // identity) differs.
  Shape output_shape(const Shape& input) const override;
  // "Residual(body 5 layers, identity)" / "Residual(body 5 layers, shortcut 2 layers)"
  std::string describe() const override;
  // "": a block is several model-file lines; model_to_text writes it (residual ... shortcut ... end).
  std::string to_line() const override;

  Sequential& body() { return *body_; }
  const Sequential& body() const { return *body_; }
  bool has_shortcut() const { return shortcut_ != nullptr; }
  // tg::Error when there is none.
  Sequential& shortcut();
  const Sequential& shortcut() const;

 private:
  // tg::Error naming both shapes unless the body's output and the skip branch have the same shape.
  void check_add(const Shape& body, const Shape& skip) const;
  Sequential* body_ = nullptr;      // owned by children(), registered as "body"
  Sequential* shortcut_ = nullptr;  // owned by children(), registered as "shortcut"; null: the identity
};

}  // namespace tg
