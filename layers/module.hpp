// tg::Module: the base of every layer. A layer overrides forward(), registers its parameters, and then
// works inside Sequential, parameters(), named_parameters(), train()/eval() and save/load.
#pragma once

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

  // Parameters in registration order, submodules' after the module's own.
  std::vector<Tensor> parameters() const;
  // PyTorch state_dict keys: "weight", "0.bias", "block.1.weight", ...
  std::vector<std::pair<std::string, Tensor>> named_parameters() const;
  std::size_t num_parameters() const;  // total number of scalars

  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

 protected:
  // Registers a parameter under `name` (requires_grad is turned on) and returns it.
  Tensor& register_parameter(std::string name, Tensor& parameter);
  // Takes ownership of a submodule, registered under `name`.
  Module& register_module(std::string name, std::unique_ptr<Module> module);
  std::vector<std::pair<std::string, std::unique_ptr<Module>>>& children() { return children_; }
  const std::vector<std::pair<std::string, std::unique_ptr<Module>>>& children() const { return children_; }

 private:
  // Handles to the same nodes as the members they were registered from, so a moved module keeps them.
  std::vector<std::pair<std::string, Tensor>> parameters_;
  std::vector<std::pair<std::string, std::unique_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace tg
