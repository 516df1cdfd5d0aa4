// tg::Module: the base of every layer. A layer overrides forward(), registers its parameters (trained) and
// buffers (saved, never trained: e.g. running statistics), and then works inside Sequential, parameters(),
// named_parameters(), named_buffers(), train()/eval(), save/load and distributed::broadcast_parameters.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/autograd/tensor.hpp"

namespace tg {

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(Module&&) = default;
  Module& operator=(Module&&) = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // The layer's computation, on a batch.
  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }

  // One line for summaries and errors, e.g. "Conv2D(1 -> 6, kernel 5x5, padding 2x2)". Defaults to the
  // class name.
  virtual std::string describe() const;
  // The short type name used in tensor and tape names ("Conv2D"); the class name by default.
  virtual std::string type_name() const;

  // The per-example output shape (no batch axis) for a per-example `input` ([C, H, W] or [F]), computed
  // without running the layer; tg::Error if the layer cannot take that input. Built-in modules compute it;
  // the default runs forward() once on zeros of batch 1, in eval mode under NoGradGuard (mode restored).
  virtual Shape output_shape(const Shape& input) const;
  // The layer as a model-file line ("conv2d 16 5 padding=2"; layers/model_file.hpp), parsed back by the
  // registered factory of its name into the same layer. Built-in modules print themselves; the default is
  // the (normalized) line this module was built from, or "" when it was not built from a model file.
  virtual std::string to_line() const;

  // Where this module came from, for errors and the tape: "lenet.tg:5 conv2d 16 5" for a module built from
  // a model file, "" otherwise. Set by the model-file parser: the location and the normalized line.
  std::string source() const;
  const std::string& source_location() const { return source_location_; }  // "lenet.tg:5", or ""
  const std::string& source_line() const { return source_line_; }          // "conv2d 16 5", or ""
  // source(), formatted once by set_source() for LayerScope and the tape entries recorded inside this module
  // (they share it, so it outlives neither); null when the module has no source.
  const std::shared_ptr<const std::string>& shared_source() const { return source_; }
  void set_source(std::string location, std::string line);

  // Parameters in registration order, submodules' after the module's own.
  std::vector<Tensor> parameters() const;
  // PyTorch state_dict keys: "weight", "0.bias", "block.1.weight", ...
  std::vector<std::pair<std::string, Tensor>> named_parameters() const;
  std::size_t num_parameters() const;  // total number of scalars (buffers not counted)

  // Buffers in registration order, submodules' after the module's own; never in parameters().
  std::vector<Tensor> buffers() const;
  // PyTorch state_dict keys, as named_parameters(): "running_mean", "1.running_mean", ...
  std::vector<std::pair<std::string, Tensor>> named_buffers() const;
  // Parameters and buffers in PyTorch's state_dict order: per module its parameters, then its buffers,
  // then its submodules' state ("0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", ...). What
  // save() writes and load() expects.
  std::vector<std::pair<std::string, Tensor>> named_state() const;

  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

 protected:
  // Registers a parameter under `name` (requires_grad is turned on) and returns it. tg::Error if this
  // module already has a parameter or buffer of that name.
  Tensor& register_parameter(std::string name, Tensor& parameter);
  // Registers a buffer under `name` and returns it: state that is saved, loaded and broadcast with the
  // parameters but never trained (not in parameters(), so no optimizer sees it). Requires a defined tensor
  // with requires_grad off (as PyTorch's buffers): one that requires grad is refused with tg::Error rather
  // than silently switched off, since it is most likely a parameter registered by mistake. A name already
  // used by a parameter or buffer of this module is a tg::Error too. Update a buffer in place (assign to
  // buffer.value(), under NoGradGuard when computed from ops); rebinding the member Tensor would leave the
  // registered handle on the old node.
  Tensor& register_buffer(std::string name, Tensor& buffer);
  // Takes ownership of a submodule, registered under `name`.
  Module& register_module(std::string name, std::unique_ptr<Module> module);
  std::vector<std::pair<std::string, std::unique_ptr<Module>>>& children() { return children_; }
  // Runs `child` (registered under `name`) on x: the one way a module calls its children, so that names
  // compose through the nesting. Inside, the tape, the profiler and errors name the child by its whole path,
  // its state-key prefix and type: "3.body.0.Conv2D" (and the child's model-file line). An error inside is
  // rethrown once, at the innermost layer, as "layer 3.body.0 Conv2D(...) (net.tg:16 conv2d 32 3): ...".
  // The output is named by the path ("3.body.0.Conv2D") unless the child returned its input or a tensor
  // already named (by a layer nested in it).
  Tensor call_child(const std::string& name, Module& child, const Tensor& x);
  // The same with `forward` run in place of child.forward(x): a fused pass that starts at `child`
  // (layers/fusion.hpp) is named, timed and has its errors named as the child.
  Tensor call_child(const std::string& name, Module& child, const Tensor& x,
                    const std::function<Tensor(const Tensor&)>& forward);
  // The child's output_shape for `input`, its errors named by the whole path as call_child's are.
  Shape child_output_shape(const std::string& name, const Module& child, const Shape& input) const;
  const std::vector<std::pair<std::string, std::unique_ptr<Module>>>& children() const { return children_; }

 private:
  // Handles to the same nodes as the members they were registered from, so a moved module keeps them.
  std::vector<std::pair<std::string, Tensor>> parameters_;
  std::vector<std::pair<std::string, Tensor>> buffers_;
  std::vector<std::pair<std::string, std::unique_ptr<Module>>> children_;
  bool training_ = true;
  std::string source_location_;                // "lenet.tg:5", or ""
  std::string source_line_;                    // "conv2d 16 5", or ""
  std::shared_ptr<const std::string> source_;  // source(), or null when it is ""

  // tg::Error unless `name` is free among this module's parameters and buffers.
  void check_unused_name(const char* what, const std::string& name) const;
  // This module's parameters and/or buffers, then each child's under "child.": PyTorch's state_dict order.
  std::vector<std::pair<std::string, Tensor>> named_tensors(bool with_parameters, bool with_buffers) const;
};

}  // namespace tg

namespace tg::distributed {

// Overwrites every rank's parameters and buffers of `model` with root's (parameters, then buffers, in one
// packed broadcast; see broadcast_parameters(const std::vector<Tensor>&, int) in core/distributed). Every
// rank must build the same model. No-op in a world of one.
void broadcast_parameters(const Module& model, int root = 0);

}  // namespace tg::distributed
