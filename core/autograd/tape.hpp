// The tape: a thread-local list of recorded ops, replayed newest to oldest by Tensor::backward().
#pragma once

#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/autograd/tensor.hpp"

namespace tg {

// "No gradient for this input": what a backward function returns for an input that needs none. The tape's
// rule: a gradient with 0 elements is no gradient, and is skipped.
inline Array no_gradient() { return Array::from_shape({0}); }

// The rule above, plus the API's "an empty Array for an input that needs none": a default-constructed Array{}
// (0-d, one element) returned for an input that is not 0-d is also read as no gradient. (For a 0-d input a
// 0-d Array is its gradient.) New code returns no_gradient().
// By the input's shape: an op output a fused pass did not store has its shape but no value (Node::unstored).
inline bool is_no_gradient(const Array& grad, const Shape& input_shape) {
  return grad.size() == 0 || (grad.dimension() == 0 && !input_shape.empty());
}
inline bool is_no_gradient(const Array& grad, const Array& input_value) {
  return is_no_gradient(grad, input_value.shape());
}

// A backward function's result with the gradients moved in: `return {std::move(dx), std::move(dw)};` copies
// every one (an initializer_list's elements are const), a pass over megabytes for an activation's gradient.
template <class... Grads>
std::vector<Array> gradients(Grads&&... grads) {
  std::vector<Array> out;
  out.reserve(sizeof...(grads));
  (out.push_back(std::forward<Grads>(grads)), ...);
  return out;
}

// Maps d(output) to one gradient per input, in input order; no_gradient() for an input that needs none.
using BackwardFn = std::function<std::vector<Array>(const Array& dout)>;
// The same, for ops whose derivative is cheapest in terms of their own output (sigmoid, softmax, exp).
using BackwardWithOutputFn = std::function<std::vector<Array>(const Array& dout, const Array& out)>;

// One recorded op. Inputs are held strongly until the entry's backward has run (backward needs them); the
// output weakly, so an output that nobody can reach any more makes the entry dead and prunable.
struct TapeEntry {
  std::string op;     // "mul", "matmul", "square", ...
  std::string layer;  // the layer that recorded it ("3.Conv2D"), empty outside layers
  // That layer's model-file line ("lenet.tg:5 conv2d 16 5", Module::source()), shared with the module (so it
  // outlives it); null for a layer not built from a model file and outside layers.
  std::shared_ptr<const std::string> source;
  std::vector<std::shared_ptr<Node>> inputs;  // emptied once the backward has run
  std::weak_ptr<Node> output;
  Shape output_shape;
  BackwardWithOutputFn backward;  // empty once it has run
  // Once the backward has run: the inputs, weakly, so that print_tape (and gdb's `tape`) can still show their
  // shapes and names during the rest of that backward() without keeping them alive.
  std::vector<std::weak_ptr<Node>> ran_inputs;
};

// Records an op: returns a Tensor holding `value`, and, when grad mode is on and some input requires
// grad, appends an entry to this thread's tape. Every built-in op is made through this function.
Tensor make_op(std::string name, Array value, const std::vector<Tensor>& inputs, BackwardFn backward);
Tensor make_op(std::string name, Array value, const std::vector<Tensor>& inputs,
               BackwardWithOutputFn backward);

// Whether make_op would record an op on these inputs now: grad mode on and some input requires grad.
bool records(const std::vector<Tensor>& inputs);
// A recorded op whose output is not stored (Node::unstored; docs/fusion.md): a fused training pass whose
// only consumer needs its own output, not this one (a conv's output under the ReLU that ran in its pass).
// `recompute` computes the value from the op's inputs when something reads it, until backward() has run
// the entry. Tape observers see an empty output. Needs records(inputs), else tg::Error.
Tensor make_unstored_op(std::string name, const Shape& shape, std::function<Array()> recompute,
                        const std::vector<Tensor>& inputs, BackwardFn backward);

// Anomaly detection (off by default, per thread): every op made through make_op checks its output, and every
// backward step the gradients it produces, for NaN or Inf, and throws tg::Error naming the op, its layer, the
// layer's model-file line when it has one, and its position on the tape:
//   "'conv2d' in layer 3.Conv2D [lenet.tg:5 conv2d 16 5] (tape entry #7)". A tape observer (anomaly.cpp; see
// observer.hpp).
void set_detect_anomaly(bool on);
bool detect_anomaly();

// Grad mode: on by default, per thread.
bool grad_enabled();
void set_grad_enabled(bool on);

// RAII: nothing is recorded while one is alive (inference, optimizer updates).
class NoGradGuard {
 public:
  NoGradGuard() : previous_(grad_enabled()) { set_grad_enabled(false); }
  ~NoGradGuard() { set_grad_enabled(previous_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// While alive, ops record `name` as their layer (Sequential sets "3.Conv2D" around each layer's forward), and
// `source` as its model-file line (Sequential passes Module::shared_source(): "lenet.tg:5 conv2d 16 5"). A
// scope without a source keeps the enclosing scope's, so the layers inside a module built from a model-file
// line are named by that line. Only the pointer is copied per op; the text is formatted when printed. Tape
// observers see the scope open and close (the profiler times layers with it).
class LayerScope {
 public:
  explicit LayerScope(std::string name, std::shared_ptr<const std::string> source = nullptr);
  ~LayerScope();
  LayerScope(const LayerScope&) = delete;
  LayerScope& operator=(const LayerScope&) = delete;

 private:
  std::string previous_;
  std::shared_ptr<const std::string> previous_source_;
};
const std::string& current_layer();
const std::string& current_layer_source();  // "lenet.tg:5 conv2d 16 5", or "" when there is none

// Inspection, for tests and debugging.
std::size_t tape_size();  // entries currently on this thread's tape
// index, [layer source], op(input shapes and names) -> output shape; one line per entry:
//   #3 [0.Conv2D lenet.tg:2 conv2d 6 5 padding=2] conv2d([64, 1, 28, 28] images, ...) -> [64, 6, 28, 28]
void print_tape(std::ostream& out);
void print_tape();  // to stderr (callable from gdb: `call tg::print_tape()`)
void clear_tape();  // drops every entry (their outputs can no longer backward)

}  // namespace tg
