#include "core/autograd/tape.hpp"

#include <algorithm>
#include <atomic>
#include <iostream>
#include <mutex>

#include "core/autograd/observer.hpp"
#include "core/base/clock.hpp"
#include "core/base/error.hpp"
#include "core/runtime/threads.hpp"

namespace tg {
namespace {

// A tape that is never backwarded (evaluation with grad mode on) would keep every entry, and with it every
// input it holds, for ever. Once it reaches this many entries, entries whose output nobody holds are dropped.
// A training step records far fewer, so training never pays for a prune; afterwards the next prune waits for
// twice the surviving entries, so pruning costs O(1) per recorded op, amortized.
constexpr std::size_t kPruneThreshold = 4096;
// During backward, nodes that received a gradient stay in `waiting` until their own entry has run; finished
// ones are dropped (freeing their value) once `waiting` holds this many, then at twice the survivors: one
// pass per that many nodes, and memory released soon after each node is done. (At 64, resnet20's whole
// backward fit under the threshold: every activation stayed alive to the end, 280 MB at batch 128.)
constexpr std::size_t kWaitingCompactThreshold = 8;

struct Tape {
  std::vector<TapeEntry> entries;
  std::size_t prune_at = kPruneThreshold;  // prune dead entries when the tape grows past this
};

thread_local Tape t_tape;
thread_local bool t_grad_enabled = true;
thread_local std::string t_layer;
thread_local std::shared_ptr<const std::string> t_layer_source;  // null when the layer has none
const std::string kNoSource;

const std::string& source_text(const std::shared_ptr<const std::string>& source) {
  return source ? *source : kNoSource;
}

// ---- observers: this thread's, and every thread's (copy-on-write, read without holding the lock) ----------
thread_local std::vector<TapeObserver*> t_observers;
std::mutex g_observers_mutex;
std::shared_ptr<const std::vector<TapeObserver*>> g_observers;  // guarded by g_observers_mutex
std::atomic<bool> g_any_global_observer{false};

// The one check the tape makes when nobody observes it.
bool observed() { return !t_observers.empty() || g_any_global_observer.load(std::memory_order_relaxed); }

template <class Call>
void notify(const Call& call) {
  for (std::size_t i = 0; i < t_observers.size(); ++i) call(*t_observers[i]);
  if (!g_any_global_observer.load(std::memory_order_relaxed)) return;
  std::shared_ptr<const std::vector<TapeObserver*>> globals;
  {
    std::lock_guard<std::mutex> lock(g_observers_mutex);
    globals = g_observers;
  }
  if (globals) {
    for (TapeObserver* observer : *globals) call(*observer);
  }
}

// Entries whose output nobody holds can never receive a gradient: drop them, newest first, so that
// dropping one releases its inputs and lets older entries die in the same pass.
void prune_dead_entries(Tape& tape) {
  for (auto it = tape.entries.rbegin(); it != tape.entries.rend(); ++it) {
    if (it->output.expired()) {
      it->inputs.clear();
      it->backward = nullptr;
    }
  }
  std::erase_if(tape.entries, [](const TapeEntry& e) { return !e.backward; });
  tape.prune_at = std::max(kPruneThreshold, 2 * tape.entries.size());
}

void accumulate(Node& input, Array&& g, const TapeEntry& entry, std::size_t index) {
  const Shape& shape = shape_of(input);
  if (g.shape() != shape) {
    fail("backward of '", entry.op, "': gradient for input ", index, " has shape ", shape_str(g.shape()),
         ", expected the input's shape ", shape_str(shape));
  }
  if (!input.is_leaf && input.released) {
    fail("backward: trying to backward through '", input.name,
         "' a second time: its tape entry was freed by an earlier backward(). Recompute the forward pass "
         "for each backward()");
  }
  if (input.grad.shape() != shape || (!input.is_leaf && !input.pending)) {
    input.grad = std::move(g);
  } else {
    input.grad += g;
  }
  input.pending = !input.is_leaf;
}

// An op's output `value`; or, for an unstored output (make_unstored_op), an empty value, its `recompute` and
// its `shape`.
Tensor record(std::string name, Array value, const std::vector<Tensor>& inputs, BackwardWithOutputFn backward,
              std::function<Array()> recompute = {}, const Shape& shape = {}) {
  bool any_requires_grad = false;
  for (const Tensor& t : inputs) {
    if (!t.defined()) fail(name, ": an input tensor is undefined");
    any_requires_grad = any_requires_grad || t.requires_grad();
  }
  Tape& tape = t_tape;
  const bool recorded = t_grad_enabled && any_requires_grad;
  if (observed()) [[unlikely]] {
    const ForwardEvent event{name,  t_layer, source_text(t_layer_source), tape.entries.size(), inputs,
                             value, recorded};
    notify([&](TapeObserver& observer) { observer.forward(event); });
  }
  auto node = std::make_shared<Node>();
  node->value = std::move(value);
  node->name = name;
  if (recompute) {
    node->unstored = true;
    node->recompute = std::move(recompute);
    node->unstored_shape = shape;
  }
  if (!recorded) return Tensor(node);

  node->requires_grad = true;
  node->is_leaf = false;
  TapeEntry entry;
  entry.op = std::move(name);
  entry.layer = t_layer;
  entry.source = t_layer_source;  // a pointer copy: formatted only when printed
  entry.inputs.reserve(inputs.size());
  for (const Tensor& t : inputs) entry.inputs.push_back(t.node_ptr());
  entry.output = node;
  entry.output_shape = shape_of(*node);
  entry.backward = std::move(backward);
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
  std::size_t compact_at = kWaitingCompactThreshold;
  bool root_ran = false;
  for (std::size_t i = tape.entries.size(); i-- > 0;) {
    TapeEntry& entry = tape.entries[i];
    std::shared_ptr<Node> out = entry.output.lock();
    if (!out || !out->pending) continue;
    root_ran = root_ran || out.get() == &root;
    const bool observing = observed();
    const double started = observing ? steady_seconds() : 0.0;
    std::vector<Array> grads = entry.backward(out->grad, out->value);
    if (grads.size() != entry.inputs.size()) {
      fail("backward of '", entry.op, "': returned ", grads.size(), " gradients for ", entry.inputs.size(),
           " inputs");
    }
    if (observing) [[unlikely]] {
      const BackwardEvent event{entry, i, grads, steady_seconds() - started};
      notify([&](TapeObserver& observer) { observer.backward(event); });
    }
    for (std::size_t k = 0; k < grads.size(); ++k) {
      const std::shared_ptr<Node>& input = entry.inputs[k];
      if (!input->requires_grad || is_no_gradient(grads[k], shape_of(*input))) continue;
      const bool was_waiting = input->pending;
      accumulate(*input, std::move(grads[k]), entry, k);
      if (input->pending && !was_waiting) waiting.push_back(input);
    }
    out->pending = false;
    out->released = true;
    out->recompute = nullptr;  // an unstored output's inputs are released with the entry (Node::unstored)
    out->grad =
        Array();  // an op output's gradient is spent once its backward ran (as PyTorch's non-leaf .grad)
    entry.ran_inputs.assign(entry.inputs.begin(), entry.inputs.end());
    entry.inputs.clear();
    entry.backward = nullptr;
    if (waiting.size() >= compact_at) {
      std::erase_if(waiting, [](const std::shared_ptr<Node>& n) { return !n->pending; });
      compact_at = std::max(kWaitingCompactThreshold, 2 * waiting.size());
    }
  }
  return root_ran;
}

// "[2, 8] 3.Flatten": an input's shape and name, read when the tape is printed.
void print_input(std::ostream& out, const std::shared_ptr<Node>& node) {
  if (!node) {
    out << "(freed)";
    return;
  }
  out << shape_str(shape_of(*node));
  if (!node->name.empty()) out << ' ' << node->name;
  if (node->unstored) out << " (not stored)";
}

// A copy of `a` made on the pool: the seed of a backward is often an activation-sized gradient (megabytes),
// whose copy on one thread would be a serial pass over memory in every step.
Array parallel_copy(const Array& a) {
  Array out = Array::from_shape(a.shape());
  const float* src = a.data();
  float* dst = out.data();
  parallel_for(
      a.size(), [&](std::size_t i0, std::size_t i1) { std::copy(src + i0, src + i1, dst + i0); },
      kElementGrain);
  return out;
}

}  // namespace

void add_tape_observer(TapeObserver* observer) {
  if (observer && std::find(t_observers.begin(), t_observers.end(), observer) == t_observers.end()) {
    t_observers.push_back(observer);
  }
}

void remove_tape_observer(TapeObserver* observer) { std::erase(t_observers, observer); }

void add_global_tape_observer(TapeObserver* observer) {
  if (!observer) return;
  std::lock_guard<std::mutex> lock(g_observers_mutex);
  auto next = g_observers ? std::make_shared<std::vector<TapeObserver*>>(*g_observers)
                          : std::make_shared<std::vector<TapeObserver*>>();
  if (std::find(next->begin(), next->end(), observer) != next->end()) return;
  next->push_back(observer);
  g_observers = std::move(next);
  g_any_global_observer.store(true, std::memory_order_relaxed);
}

void remove_global_tape_observer(TapeObserver* observer) {
  std::lock_guard<std::mutex> lock(g_observers_mutex);
  if (!g_observers) return;
  auto next = std::make_shared<std::vector<TapeObserver*>>(*g_observers);
  std::erase(*next, observer);
  g_any_global_observer.store(!next->empty(), std::memory_order_relaxed);
  g_observers = std::move(next);
}

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

bool records(const std::vector<Tensor>& inputs) {
  if (!t_grad_enabled) return false;
  return std::any_of(inputs.begin(), inputs.end(), [](const Tensor& t) { return t.requires_grad(); });
}

Tensor make_unstored_op(std::string name, const Shape& shape, std::function<Array()> recompute,
                        const std::vector<Tensor>& inputs, BackwardFn backward) {
  if (!backward || !recompute) fail(name, ": make_unstored_op needs a backward and a recompute function");
  if (!records(inputs)) {
    fail(name,
         ": an unstored output needs a tape entry (gradients recorded and an input that requires one); "
         "check tg::records(inputs) first");
  }
  return record(
      std::move(name), Array::from_shape({0}), inputs,  // no elements until recompute runs
      [fn = std::move(backward)](const Array& dout, const Array&) { return fn(dout); }, std::move(recompute),
      shape);
}

LayerScope::LayerScope(std::string name, std::shared_ptr<const std::string> source) {
  if (observed()) [[unlikely]] {
    notify([&](TapeObserver& observer) { observer.layer_begin(name); });
  }
  previous_ = std::move(t_layer);
  t_layer = std::move(name);
  previous_source_ = t_layer_source;
  if (source) t_layer_source = std::move(source);  // without one, the enclosing scope's stays
}

LayerScope::~LayerScope() {
  if (observed()) [[unlikely]] {
    notify([&](TapeObserver& observer) { observer.layer_end(t_layer); });
  }
  t_layer = std::move(previous_);
  t_layer_source = std::move(previous_source_);
}

const std::string& current_layer() { return t_layer; }
const std::string& current_layer_source() { return source_text(t_layer_source); }

bool grad_enabled() { return t_grad_enabled; }
void set_grad_enabled(bool on) { t_grad_enabled = on; }

void Tensor::backward() const {
  const Node& n = checked("backward");
  const Shape& shape = shape_of(n);  // an unstored output has its shape, not its value
  if (xt::compute_size(shape) != 1) {
    fail("backward: expected a scalar (1-element) tensor, got shape ", shape_str(shape),
         "; reduce it first, e.g. tg::sum(x), or pass d(loss)/d(this) to backward(grad_output)");
  }
  backward(xt::ones<float>(shape));
}

void Tensor::backward(const Array& grad_output) const {
  Node& root = checked("backward");
  if (grad_output.shape() != shape_of(root)) {
    fail("backward: grad_output has shape ", shape_str(grad_output.shape()), ", expected the tensor's shape ",
         shape_str(shape_of(root)));
  }
  if (!root.requires_grad) {
    fail("backward: '", root.name,
         "' does not require grad: no input of the ops that made it requires grad, "
         "or it was computed under NoGradGuard");
  }
  if (root.is_leaf) {
    if (root.grad.shape() == grad_output.shape())
      root.grad += grad_output;
    else
      root.grad = grad_output;
    return;
  }
  if (root.released) {
    fail("backward: '", root.name,
         "' was already backwarded and its tape entries freed; "
         "recompute the forward pass for each backward()");
  }
  root.grad = parallel_copy(grad_output);
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
    tape.prune_at = std::max(kPruneThreshold, 2 * tape.entries.size());
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
    fail("backward: '", root.name,
         "' has no entry on this thread's tape (was the tape cleared, or did its forward ",
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
    if (!e.layer.empty() || e.source) {
      out << '[' << e.layer;
      if (e.source) out << (e.layer.empty() ? "" : " ") << *e.source;
      out << "] ";
    }
    out << e.op << '(';
    // inputs are held until the entry's backward has run, then only weakly (ran_inputs)
    const std::size_t n = e.backward ? e.inputs.size() : e.ran_inputs.size();
    for (std::size_t k = 0; k < n; ++k) {
      if (k) out << ", ";
      print_input(out, e.backward ? e.inputs[k] : e.ran_inputs[k].lock());
    }
    out << ") -> " << shape_str(e.output_shape);
    if (const std::shared_ptr<Node> o = e.output.lock(); o && o->unstored) out << " (fused: not stored)";
    if (!e.backward)
      out << " (backward done)";
    else if (e.output.expired())
      out << " (output freed)";
    out << '\n';
  }
}

void print_tape() { print_tape(std::cerr); }

void clear_tape() {
  t_tape.entries.clear();
  t_tape.prune_at = kPruneThreshold;
}

}  // namespace tg
