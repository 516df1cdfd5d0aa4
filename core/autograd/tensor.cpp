// Tensor: its constructor (which links the memory-reuse setting in) and the handle's accessors (value, grad,
// flags, name, each checking the handle is defined), and the .debug_gdb_scripts entry that points gdb at
// tapegrad's pretty-printers.
#include "core/autograd/tensor.hpp"

#include "core/base/error.hpp"
#include "core/runtime/memory.hpp"

#ifdef TAPEGRAD_GDB_SCRIPT
// Tells gdb where tapegrad's pretty-printers and `tape` command are (scripts/gdb/tapegrad_gdb.py); gdb loads
// them for any binary linking tapegrad once that folder is trusted (add-auto-load-safe-path).
asm(".pushsection \".debug_gdb_scripts\", \"MS\",@progbits,1\n"
    ".byte 1\n"
    ".asciz \"" TAPEGRAD_GDB_SCRIPT
    "\"\n"
    ".popsection\n");
#endif

namespace tg {

Tensor::Tensor(Array value, bool requires_grad) : node_(std::make_shared<Node>()) {
  static const bool reuse_configured = memory_reuse();  // links core/memory.cpp, whose load applies it
  (void)reuse_configured;
  node_->value = std::move(value);
  node_->requires_grad = requires_grad;
}

Node& Tensor::checked(const char* what) const {
  if (!node_) fail("Tensor::", what, ": the tensor is undefined (default-constructed)");
  return *node_;
}

void materialize(Node& n) {
  if (!n.unstored) return;
  if (!n.recompute) {
    fail(
        "the value of '", n.name, "' ", shape_str(n.unstored_shape),
        " was not stored: its op ran fused with the activation after it (docs/fusion.md), and backward() has "
        "run since, so the weights it would be recomputed from may have changed. Read it before backward(), "
        "or train with fusion off (TG_FUSION=0, tg::set_fusion(false))");
  }
  Array value = n.recompute();
  if (value.shape() != n.unstored_shape) {
    fail("materialize '", n.name, "': recomputed ", shape_str(value.shape()), ", expected ",
         shape_str(n.unstored_shape));
  }
  n.value = std::move(value);
  n.recompute = nullptr;
  n.unstored = false;
}

void materialize(Node* n) {
  if (n) materialize(*n);
}

namespace {

Node& stored(Node& n) {
  if (n.unstored) [[unlikely]]
    materialize(n);
  return n;
}

}  // namespace

const Array& Tensor::value() const& { return stored(checked("value")).value; }
Array& Tensor::value() & { return stored(checked("value")).value; }
Array Tensor::value() const&& { return stored(checked("value")).value; }

const Array& Tensor::grad() const& {
  Node& n = checked("grad");
  const Shape& shape = shape_of(n);
  if (n.grad.shape() != shape) n.grad = xt::zeros<float>(shape);
  return n.grad;
}

void Tensor::zero_grad() {
  Node& n = checked("zero_grad");
  if (n.grad.shape() == shape_of(n)) {
    std::fill(n.grad.begin(), n.grad.end(), 0.f);
  } else {
    n.grad = xt::zeros<float>(shape_of(n));
  }
}

bool Tensor::requires_grad() const { return node_ && node_->requires_grad; }

Tensor& Tensor::set_requires_grad(bool on) & {
  Node& n = checked("set_requires_grad");
  if (!n.is_leaf && !on)
    fail("Tensor::set_requires_grad: '", n.name, "' is the output of an op; use detach()");
  n.requires_grad = on;
  return *this;
}

bool Tensor::is_leaf() const { return checked("is_leaf").is_leaf; }

float Tensor::item() const {
  const Array& v = value();
  if (v.size() != 1) fail("item: expected a tensor with 1 element, got shape ", shape_str(v.shape()));
  return v.data()[0];
}

Tensor Tensor::detach() const {
  Tensor out(value(), false);
  out.node_->name = node_->name;
  return out;
}

const std::string& Tensor::name() const& { return checked("name").name; }

Tensor& Tensor::set_name(std::string name) & {
  checked("set_name").name = std::move(name);
  return *this;
}

}  // namespace tg
