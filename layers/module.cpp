#include "layers/module.hpp"

#include <cxxabi.h>

#include <cstdlib>
#include <typeinfo>

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

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, p] : named_parameters()) out.push_back(p);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Tensor>> out = parameters_;
  for (const auto& [child_name, child] : children_) {
    for (auto& [name, p] : child->named_parameters()) out.emplace_back(child_name + "." + name, p);
  }
  return out;
}

std::size_t Module::num_parameters() const {
  std::size_t n = 0;
  for (const Tensor& p : parameters()) n += p.numel();
  return n;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

Tensor& Module::register_parameter(std::string name, Tensor& parameter) {
  parameter.set_requires_grad(true);
  if (parameter.name().empty()) parameter.set_name(name);
  parameters_.emplace_back(std::move(name), parameter);
  return parameter;
}

Module& Module::register_module(std::string name, std::unique_ptr<Module> module) {
  children_.emplace_back(std::move(name), std::move(module));
  return *children_.back().second;
}

}  // namespace tg
