#include "layers/module.hpp"

#include <cxxabi.h>

#include <algorithm>
#include <cstdlib>
#include <typeinfo>

#include "core/autograd/tape.hpp"
#include "core/base/error.hpp"
#include "core/distributed/distributed.hpp"

namespace tg {

std::string Module::type_name() const {
  int status = 0;
  char* demangled = abi::__cxa_demangle(typeid(*this).name(), nullptr, nullptr, &status);
  std::string name = status == 0 && demangled ? demangled : typeid(*this).name();
  std::free(demangled);
  if (name.rfind("tg::", 0) == 0) name = name.substr(4);
  return name;
}

std::string Module::describe() const { return type_name(); }

Shape Module::output_shape(const Shape& input) const {
  // Not const in spirit only for the mode switch: the module's state is what it was on return.
  auto& self = const_cast<Module&>(*this);
  Shape batched(input.size() + 1);
  batched[0] = 1;
  std::copy(input.begin(), input.end(), batched.begin() + 1);
  const bool was_training = training_;
  self.train(false);
  Shape out;
  try {
    NoGradGuard no_grad;
    out = self.forward(Tensor(Array(xt::zeros<float>(batched)))).shape();
  } catch (...) {
    self.train(was_training);
    throw;
  }
  self.train(was_training);
  if (out.empty() || out[0] != 1) {
    fail(type_name(), ": output_shape: forward on a batch of 1 returned ", shape_str(out),
         ", not a batch of 1; override output_shape()");
  }
  return Shape(out.begin() + 1, out.end());
}

std::string Module::to_line() const { return source_line_; }

std::string Module::source() const { return source_ ? *source_ : std::string(); }

void Module::set_source(std::string location, std::string line) {
  source_location_ = std::move(location);
  source_line_ = std::move(line);
  std::string text = source_location_.empty() || source_line_.empty() ? source_location_ + source_line_
                                                                      : source_location_ + " " + source_line_;
  source_ = text.empty() ? nullptr : std::make_shared<const std::string>(std::move(text));
}

namespace {

// The state-key path of the module running now on this thread ("3.body"; "" outside any call_child).
thread_local std::string t_module_path;

// An error already named by call_child or child_output_shape: the enclosing levels pass it on unchanged.
class NamedLayerError : public Error {
 public:
  using Error::Error;
};

// Makes `path` the current module path for the scope's lifetime.
class PathScope {
 public:
  explicit PathScope(const std::string& name)
      : previous_(t_module_path), path_(previous_.empty() ? name : previous_ + "." + name) {
    t_module_path = path_;
  }
  ~PathScope() { t_module_path = std::move(previous_); }
  PathScope(const PathScope&) = delete;
  PathScope& operator=(const PathScope&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string previous_;
  std::string path_;
};

// "layer 3.body.0 Conv2D(6 -> 16, kernel 5x5) (net.tg:5 conv2d 16 5): <what>".
NamedLayerError layer_error(const std::string& path, const Module& child, const char* what) {
  const std::string source = child.source();
  return NamedLayerError("layer " + path + " " + child.describe() +
                         (source.empty() ? "" : " (" + source + ")") + ": " + what);
}

}  // namespace

Tensor Module::call_child(const std::string& name, Module& child, const Tensor& x) {
  return call_child(name, child, x, [&child](const Tensor& in) { return child.forward(in); });
}

Tensor Module::call_child(const std::string& name, Module& child, const Tensor& x,
                          const std::function<Tensor(const Tensor&)>& forward) {
  PathScope path(name);
  const std::string label = path.path() + "." + child.type_name();
  Tensor out;
  try {
    LayerScope scope(label, child.shared_source());  // names the layer on the tape; the profiler times it
    out = forward(x);
  } catch (const NamedLayerError&) {
    throw;
  } catch (const Error& e) {
    throw layer_error(path.path(), child, e.what());
  }
  // Identity layers keep their input's name, and the innermost layer names an output: a block's body returns
  // its last layer's "3.body.4.BatchNorm2d" (a name under this path), not "3.body.Sequential".
  if (out.node() != x.node() && out.name().rfind(path.path() + ".", 0) != 0) out.set_name(label);
  return out;
}

Shape Module::child_output_shape(const std::string& name, const Module& child, const Shape& input) const {
  PathScope path(name);
  try {
    return child.output_shape(input);
  } catch (const NamedLayerError&) {
    throw;
  } catch (const Error& e) {
    throw layer_error(path.path(), child, e.what());
  }
}

namespace {

std::vector<Tensor> tensors_of(const std::vector<std::pair<std::string, Tensor>>& named) {
  std::vector<Tensor> out;
  out.reserve(named.size());
  for (const auto& [name, t] : named) out.push_back(t);
  return out;
}

}  // namespace

std::vector<std::pair<std::string, Tensor>> Module::named_tensors(bool with_parameters,
                                                                  bool with_buffers) const {
  std::vector<std::pair<std::string, Tensor>> out;
  if (with_parameters) out = parameters_;
  if (with_buffers) out.insert(out.end(), buffers_.begin(), buffers_.end());
  for (const auto& [child_name, child] : children_) {
    for (auto& [name, t] : child->named_tensors(with_parameters, with_buffers)) {
      out.emplace_back(child_name + "." + name, std::move(t));
    }
  }
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters() const {
  return named_tensors(true, false);
}
std::vector<std::pair<std::string, Tensor>> Module::named_buffers() const {
  return named_tensors(false, true);
}
std::vector<std::pair<std::string, Tensor>> Module::named_state() const { return named_tensors(true, true); }
std::vector<Tensor> Module::parameters() const { return tensors_of(named_parameters()); }
std::vector<Tensor> Module::buffers() const { return tensors_of(named_buffers()); }

std::size_t Module::num_parameters() const {
  std::size_t n = 0;
  for (const Tensor& p : parameters()) n += p.numel();
  return n;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::check_unused_name(const char* what, const std::string& name) const {
  for (const auto& [pname, p] : parameters_) {
    if (pname == name) {
      fail(type_name(), ": ", what, " '", name, "': the module already has a parameter of that name");
    }
  }
  for (const auto& [bname, b] : buffers_) {
    if (bname == name) {
      fail(type_name(), ": ", what, " '", name, "': the module already has a buffer of that name");
    }
  }
}

Tensor& Module::register_parameter(std::string name, Tensor& parameter) {
  check_unused_name("register_parameter", name);
  parameter.set_requires_grad(true);
  if (parameter.name().empty()) parameter.set_name(name);
  parameters_.emplace_back(std::move(name), parameter);
  return parameter;
}

Tensor& Module::register_buffer(std::string name, Tensor& buffer) {
  check_unused_name("register_buffer", name);
  if (!buffer.defined()) {
    fail(type_name(), ": register_buffer '", name, "': expected a tensor with a value, got none");
  }
  if (buffer.requires_grad()) {
    fail(type_name(), ": register_buffer '", name,
         "': expected a tensor without grad (a buffer is never trained), ",
         "got one with requires_grad on; use register_parameter for trained state, or detach() it");
  }
  if (buffer.name().empty()) buffer.set_name(name);
  buffers_.emplace_back(std::move(name), buffer);
  return buffer;
}

Module& Module::register_module(std::string name, std::unique_ptr<Module> module) {
  children_.emplace_back(std::move(name), std::move(module));
  return *children_.back().second;
}

}  // namespace tg

namespace tg::distributed {

void broadcast_parameters(const Module& model, int root) {
  std::vector<Tensor> state = model.parameters();
  for (const Tensor& b : model.buffers()) state.push_back(b);
  broadcast_parameters(state, root);
}

}  // namespace tg::distributed
