#include "core/autograd/tape.hpp"

#include <cmath>
#include <iostream>

#include "core/autograd/error.hpp"
#include "core/autograd/profile.hpp"

namespace tg {
namespace {

struct Tape {
  std::vector<TapeEntry> entries;
  std::size_t prune_at = 4096;  // prune dead entries when the tape grows past this
};

thread_local Tape t_tape;
thread_local bool t_grad_enabled = true;
thread_local std::string t_layer;
thread_local bool t_detect_anomaly = false;

// The first non-finite element of a, or -1.
std::ptrdiff_t first_non_finite(const Array& a) {
  const float* p = a.data();
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(p[i])) return static_cast<std::ptrdiff_t>(i);
  }
  return -1;
}

std::string where(const std::string& op, const std::string& layer, std::size_t position) {
  return "'" + op + "'" + (layer.empty() ? "" : " in layer " + layer) + " (tape entry #" + std::to_string(position) + ")";
}

// Entries whose output nobody holds can never receive a gradient: drop them, newest first, so that
// dropping one releases its inputs and lets older entries die in the same pass. Keeps a tape that is
// never backwarded (e.g. evaluation with grad mode on) from growing without bound.
void prune_dead_entries(Tape& tape) {
  for (auto it = tape.entries.rbegin(); it != tape.entries.rend(); ++it) {
    if (it->output.expired()) {
      it->inputs.clear();
      it->backward = nullptr;
    }
  }
  std::erase_if(tape.entries, [](const TapeEntry& e) { return !e.backward; });
  tape.prune_at = std::max<std::size_t>(4096, 2 * tape.entries.size());
}

// Treats a default 0-d Array returned for a non-scalar input, or a size-0 Array, as "no gradient".
bool is_no_grad(const Array& g, const Array& input_value) {
  return g.size() == 0 || (g.dimension() == 0 && input_value.dimension() != 0);
}

void accumulate(Node& input, Array&& g, const TapeEntry& entry, std::size_t index) {
  if (g.shape() != input.value.shape()) {
    fail("backward of '", entry.op, "': gradient for input ", index, " has shape ", shape_str(g.shape()),
         ", expected the input's shape ", shape_str(input.value.shape()));
  }
  if (!input.is_leaf && input.released) {
    fail("backward: trying to backward through '", input.name,
         "' a second time: its tape entry was freed by an earlier backward(). Recompute the forward pass "
         "for each backward()");
  }
  if (input.grad.shape() != input.value.shape() || (!input.is_leaf && !input.pending)) {
    input.grad = std::move(g);
  } else {
    input.grad += g;
  }
  input.pending = !input.is_leaf;
}

Tensor record(std::string name, Array value, const std::vector<Tensor>& inputs, BackwardWithOutputFn backward) {
  bool any_requires_grad = false;
  for (const Tensor& t : inputs) {
    if (!t.defined()) fail(name, ": an input tensor is undefined");
    any_requires_grad = any_requires_grad || t.requires_grad();
  }
  if (profiling()) profile_detail::op_recorded(name, t_layer);
  if (t_detect_anomaly) {
    if (const std::ptrdiff_t bad = first_non_finite(value); bad >= 0) {
      fail("detect_anomaly: the output of ", where(name, t_layer, t_tape.entries.size()), " has ",
           value.data()[bad], " at flat index ", bad, " (shape ", shape_str(value.shape()), ")");
    }
  }
  auto node = std::make_shared<Node>();
  node->value = std::move(value);
  node->name = name;
  if (!(t_grad_enabled && any_requires_grad)) return Tensor(node);

  node->requires_grad = true;
  node->is_leaf = false;
  TapeEntry entry;
  entry.op = std::move(name);
  entry.layer = t_layer;
  entry.inputs.reserve(inputs.size());
  for (const Tensor& t : inputs) {
    entry.inputs.push_back(t.node_ptr());
    const Node& n = *t.node();
    entry.input_labels.push_back(shape_str(n.value.shape()) + (n.name.empty() ? "" : " " + n.name));
  }
  entry.output = node;
  entry.output_shape = node->value.shape();
  entry.backward = std::move(backward);
  Tape& tape = t_tape;
  tape.entries.push_back(std::move(entry));
  if (tape.entries.size() >= tape.prune_at) prune_dead_entries(tape);
  return Tensor(node);
}

// Runs the entries that lead to `root`, newest to oldest, with a plain loop: entries are in execution order,
// so every consumer of a node runs before the op that produced it, and a chain of any length needs no
// recursion. An entry is freed as soon as it has run; the nodes it fed a gradient into are kept alive in
// `waiting` until their own entries run (then dropped, in amortized batches). Returns whether root's own
// entry was found.
bool replay(Tape& tape, const Node& root, std::vector<std::shared_ptr<Node>>& waiting) {
  std::size_t compact_at = 64;
  bool root_ran = false;
  for (std::size_t i = tape.entries.size(); i-- > 0;) {
    TapeEntry& entry = tape.entries[i];
    std::shared_ptr<Node> out = entry.output.lock();
    if (!out || !out->pending) continue;
    root_ran = root_ran || out.get() == &root;
    const double started = profiling() ? profile_detail::now() : 0.0;
    std::vector<Array> grads = entry.backward(out->grad, out->value);
    if (grads.size() != entry.inputs.size()) {
      fail("backward of '", entry.op, "': returned ", grads.size(), " gradients for ", entry.inputs.size(),
           " inputs");
    }
    for (std::size_t k = 0; k < grads.size(); ++k) {
      const std::shared_ptr<Node>& input = entry.inputs[k];
      if (!input->requires_grad || is_no_grad(grads[k], input->value)) continue;
      if (t_detect_anomaly) {
        if (const std::ptrdiff_t bad = first_non_finite(grads[k]); bad >= 0) {
          fail("detect_anomaly: the backward of ", where(entry.op, entry.layer, i), " gave ", grads[k].data()[bad],
               " in the gradient of input ", k, " at flat index ", bad);
        }
      }
      const bool was_waiting = input->pending;
      accumulate(*input, std::move(grads[k]), entry, k);
      if (input->pending && !was_waiting) waiting.push_back(input);
    }
    if (profiling()) profile_detail::op_backward(entry.op, entry.layer, profile_detail::now() - started);
    out->pending = false;
    out->released = true;
    entry.inputs.clear();
    entry.backward = nullptr;
    if (waiting.size() >= compact_at) {
      std::erase_if(waiting, [](const std::shared_ptr<Node>& n) { return !n->pending; });
      compact_at = std::max<std::size_t>(64, 2 * waiting.size());
    }
  }
  return root_ran;
}

}  // namespace

Tensor make_op(std::string name, Array value, const std::vector<Tensor>& inputs, BackwardFn backward) {
  if (!backward) fail(name, ": make_op needs a backward function");
  return record(std::move(name), std::move(value), inputs,
                [fn = std::move(backward)](const Array& dout, const Array&) { return fn(dout); });
}

Tensor make_op(std::string name, Array value, const std::vector<Tensor>& inputs,
               BackwardWithOutputFn backward) {
  if (!backward) fail(name, ": make_op needs a backward function");
  return record(std::move(name), std::move(value), inputs, std::move(backward));
}

LayerScope::LayerScope(std::string name) : previous_(std::move(t_layer)) { t_layer = std::move(name); }
LayerScope::~LayerScope() { t_layer = std::move(previous_); }
const std::string& current_layer() { return t_layer; }

bool grad_enabled() { return t_grad_enabled; }
void set_detect_anomaly(bool on) { t_detect_anomaly = on; }
bool detect_anomaly() { return t_detect_anomaly; }
void set_grad_enabled(bool on) { t_grad_enabled = on; }

void Tensor::backward() const {
  const Node& n = checked("backward");
  if (n.value.size() != 1) {
    fail("backward: expected a scalar (1-element) tensor, got shape ", shape_str(n.value.shape()),
         "; reduce it first, e.g. tg::sum(x), or pass d(loss)/d(this) to backward(grad_output)");
  }
  backward(xt::ones<float>(n.value.shape()));
}

void Tensor::backward(const Array& grad_output) const {
  Node& root = checked("backward");
  if (grad_output.shape() != root.value.shape()) {
    fail("backward: grad_output has shape ", shape_str(grad_output.shape()), ", expected the tensor's shape ",
         shape_str(root.value.shape()));
  }
  if (!root.requires_grad) {
    fail("backward: '", root.name, "' does not require grad: no input of the ops that made it requires grad, "
         "or it was computed under NoGradGuard");
  }
  if (root.is_leaf) {
    if (root.grad.shape() == grad_output.shape()) root.grad += grad_output; else root.grad = grad_output;
    return;
  }
  if (root.released) {
    fail("backward: '", root.name, "' was already backwarded and its tape entries freed; "
         "recompute the forward pass for each backward()");
  }
  root.grad = grad_output;
  root.pending = true;
  NoGradGuard no_grad;  // backward functions never record
  Tape& tape = t_tape;
  std::vector<std::shared_ptr<Node>> waiting;
  // Whatever happens (an error thrown by a backward function, detect_anomaly), leave no node pending and drop
  // the entries that already ran, so that a later backward starts clean.
  auto finish = [&] {
    root.pending = false;
    for (const std::shared_ptr<Node>& n : waiting) n->pending = false;
    std::erase_if(tape.entries, [](const TapeEntry& e) { return !e.backward; });
    tape.prune_at = std::max<std::size_t>(4096, 2 * tape.entries.size());
  };
  bool root_ran = false;
  try {
    root_ran = replay(tape, root, waiting);
  } catch (...) {
    finish();
    throw;
  }
  finish();
  if (!root_ran) {
    fail("backward: '", root.name, "' has no entry on this thread's tape (was the tape cleared, or did its forward ",
         "run on another thread?)");
  }
}

std::size_t tape_size() { return t_tape.entries.size(); }

void print_tape(std::ostream& out) {
  const Tape& tape = t_tape;
  out << "tape: " << tape.entries.size() << " entries (oldest first)\n";
  for (std::size_t i = 0; i < tape.entries.size(); ++i) {
    const TapeEntry& e = tape.entries[i];
    out << "  #" << i << ' ';
    if (!e.layer.empty()) out << '[' << e.layer << "] ";
    out << e.op << '(';
    for (std::size_t k = 0; k < e.input_labels.size(); ++k) out << (k ? ", " : "") << e.input_labels[k];
    out << ") -> " << shape_str(e.output_shape);
    if (!e.backward) out << " (backward done)";
    else if (e.output.expired()) out << " (output freed)";
    out << '\n';
  }
}

void print_tape() { print_tape(std::cerr); }

void clear_tape() {
  t_tape.entries.clear();
  t_tape.prune_at = 4096;
}

}  // namespace tg
