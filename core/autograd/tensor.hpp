// tg::Tensor: a cheap handle (shared pointer) to a node holding a value, its gradient and a debug name.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/xt.hpp"

namespace tg {

// What a Tensor points to. Copying a Tensor copies the handle, never this.
struct Node {
  Array value;                 // the data, always evaluated
  Array grad;                  // d(loss)/d(value); empty until first needed, then value's shape
  bool requires_grad = false;  // leaves: as the user set it; op outputs: true when recorded on the tape
  bool is_leaf = true;         // false for the output of a recorded op
  bool released = false;       // op output whose tape entry backward() already freed
  bool pending = false;        // received a gradient in the backward pass under way
  std::string name;            // user-given name, or the op that made it ("mul", "linear")
  // An op output a fused training pass did not store (docs/fusion.md: a conv or batch norm whose ReLU ran in
  // its pass): `value` stays empty and `recompute` computes it from the op's inputs the first time
  // Tensor::value() reads it (then it is kept). `unstored_shape` is its shape meanwhile. backward() drops
  // `recompute` with the op's entry (the weights it would read may then change); a read after that is an
  // error.
  bool unstored = false;
  std::function<Array()> recompute;
  Shape unstored_shape;
};

// A node's shape, whether its value is stored or not (Node::unstored); never computes the value.
inline const Shape& shape_of(const Node& n) { return n.unstored ? n.unstored_shape : n.value.shape(); }
// Computes and keeps an unstored node's value (Node::recompute); tg::Error, naming the node, when backward()
// has dropped what it needs. gdb's `npy` and the printers' `call tg::materialize(node)` use it.
void materialize(Node& n);
void materialize(Node* n);

class Tensor {
 public:
  // An undefined tensor: stands for "none" (e.g. no bias in tg::linear). Using its value throws.
  Tensor() = default;
  // A leaf tensor owning `value`. Gradients accumulate into grad() when requires_grad is true.
  explicit Tensor(Array value, bool requires_grad = false);
  // Wraps an existing node (used by the tape and by make_op).
  explicit Tensor(std::shared_ptr<Node> node) : node_(std::move(node)) {}

  bool defined() const { return node_ != nullptr; }

  // value(), grad(), shape() and name() of a named Tensor return references into its node. On a temporary
  // (`net(x).value()`) they return a copy: the temporary's node may die at the end of the statement, so
  // `const Array& z = net(x).value();` binds to a copy that lives as long as z, never to a dead node.
  const Array& value() const&;
  Array& value() &;  // to load weights; writing it does not touch the tape
  Array value() const&&;
  const Shape& shape() const& { return shape_of(checked("shape")); }
  Shape shape() const&& { return shape_of(checked("shape")); }
  std::size_t dim() const { return shape_of(checked("dim")).size(); }  // never computes an unstored value
  std::size_t numel() const { return xt::compute_size(shape_of(checked("numel"))); }

  // d(loss)/d(this), accumulated over backward() calls; zeros of value's shape before any.
  const Array& grad() const&;
  Array grad() const&& { return grad(); }
  void zero_grad();
  bool requires_grad() const;
  Tensor& set_requires_grad(bool on) &;
  Tensor set_requires_grad(bool on) && { return std::move(set_requires_grad(on)); }
  bool is_leaf() const;

  // The single value of a 1-element tensor; throws tg::Error otherwise.
  float item() const;
  // Same value (shared storage is not needed: a copy), no gradient, not recorded.
  Tensor detach() const;
  // Backpropagates from this scalar through the tape (newest entry first), then frees the entries used.
  void backward() const;
  // Backpropagates from a non-scalar tensor given d(loss)/d(this) (grad_output, this tensor's shape), as
  // PyTorch's y.backward(g).
  void backward(const Array& grad_output) const;

  const std::string& name() const&;
  std::string name() const&& { return name(); }
  Tensor& set_name(std::string name) &;
  Tensor set_name(std::string name) && { return std::move(set_name(std::move(name))); }

  // The node itself: valid while some Tensor (or the tape) holds it; node_ptr() of a temporary is a copy.
  Node* node() const { return node_.get(); }
  const std::shared_ptr<Node>& node_ptr() const& { return node_; }
  std::shared_ptr<Node> node_ptr() const&& { return node_; }

 private:
  Node& checked(const char* what) const;
  std::shared_ptr<Node> node_;
};

}  // namespace tg
