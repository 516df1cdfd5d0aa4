#include "layers/residual.hpp"

#include <memory>
#include <utility>

#include "core/base/error.hpp"
#include "core/ops/ops.hpp"

namespace tg {
namespace {

std::string layers_str(std::size_t n) { return std::to_string(n) + (n == 1 ? " layer" : " layers"); }

}  // namespace

Residual::Residual(Sequential body) {
  if (body.size() == 0) fail("Residual: the body is empty; give it at least one layer");
  body_ = &static_cast<Sequential&>(register_module("body", std::make_unique<Sequential>(std::move(body))));
}

Residual::Residual(Sequential body, Sequential shortcut) : Residual(std::move(body)) {
  if (shortcut.size() == 0) {
    fail("Residual: the shortcut is empty; for the identity shortcut use Residual(body)");
  }
  shortcut_ = &static_cast<Sequential&>(
      register_module("shortcut", std::make_unique<Sequential>(std::move(shortcut))));
}

Sequential& Residual::shortcut() {
  if (!shortcut_) fail("Residual::shortcut: this block has no shortcut (the identity)");
  return *shortcut_;
}

const Sequential& Residual::shortcut() const {
  if (!shortcut_) fail("Residual::shortcut: this block has no shortcut (the identity)");
  return *shortcut_;
}

void Residual::check_add(const Shape& body, const Shape& skip) const {
  if (body != skip) {
    fail("Residual: the body gives ", shape_str(body), " but the ",
         shortcut_ ? "shortcut gives " : "identity shortcut passes the input ", shape_str(skip),
         "; a residual add never broadcasts",
         shortcut_ ? "" : " (give the block a shortcut that makes the body's shape)");
  }
}

Tensor Residual::forward(const Tensor& x) {
  if (fusion::allowed()) return forward_fused(x, ConvActivation::None);
  const Tensor body_out = call_child("body", *body_, x);  // [N, C', H', W']
  const Tensor skip = shortcut_ ? call_child("shortcut", *shortcut_, x) : x;
  check_add(body_out.shape(), skip.shape());
  return body_out + skip;
}

Tensor Residual::forward_fused(const Tensor& x, ConvActivation act) {
  const Tensor skip = shortcut_ ? call_child("shortcut", *shortcut_, x) : x;
  const fusion::Tail tail{skip, act};
  bool applied = false;
  Tensor out =
      call_child("body", *body_, x, [&](const Tensor& in) { return body_->forward_tail(in, tail, applied); });
  if (applied) return out;
  check_add(out.shape(), skip.shape());
  out = out + skip;
  if (act == ConvActivation::ReLU) return relu(out);
  if (act == ConvActivation::ReLU6) return relu6(out);
  return out;
}

Shape Residual::output_shape(const Shape& input) const {
  const Shape body_shape = child_output_shape("body", *body_, input);
  const Shape skip_shape = shortcut_ ? child_output_shape("shortcut", *shortcut_, input) : input;
  if (body_shape != skip_shape) {
    fail("Residual: the body gives ", shape_str(body_shape), " but the ",
         shortcut_ ? "shortcut gives " : "identity shortcut passes the input ", shape_str(skip_shape),
         "; a residual add never broadcasts");
  }
  return body_shape;
}

std::string Residual::describe() const {
  return "Residual(body " + layers_str(body_->size()) +
         (shortcut_ ? ", shortcut " + layers_str(shortcut_->size()) : ", identity") + ")";
}

std::string Residual::to_line() const { return ""; }

}  // namespace tg
