#include "layers/checkpoint.hpp"

#include <unordered_map>

#include "core/base/error.hpp"

namespace tg {
namespace {
const std::string kOptimizerPrefix = "optimizer.";
}  // namespace

void dump_npy(const Tensor& t, const std::string& path) { dump_npy(t.value(), path); }

void save(const Module& model, const std::string& path, const TrainingState& state) {
  const auto named = model.named_state();  // parameters and buffers, in PyTorch's state_dict order
  std::vector<std::pair<std::string, const Array*>> tensors;
  for (const auto& [name, t] : named) tensors.emplace_back(name, &t.value());
  for (const auto& [name, value] : state.optimizer) tensors.emplace_back(kOptimizerPrefix + name, &value);
  write_safetensors(path, tensors, state.metadata);
}

TrainingState load(Module& model, const std::string& path) {
  SafetensorsFile file = read_safetensors(path);
  std::unordered_map<std::string, Array*> by_name;
  TrainingState state;
  state.metadata = file.metadata;
  for (auto& [name, value] : file.tensors) {
    if (name.rfind(kOptimizerPrefix, 0) == 0) {
      state.optimizer.emplace_back(name.substr(kOptimizerPrefix.size()), std::move(value));
    } else {
      by_name[name] = &value;
    }
  }
  auto params = model.named_state();  // parameters and buffers
  // validate everything before touching the model
  for (const auto& [name, p] : params) {
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      fail("load: ", path, ": missing tensor '", name, "' ", shape_str(p.shape()),
           " (was it saved from a different model?)");
    }
    if (it->second->shape() != p.shape()) {
      fail("load: ", path, ": tensor '", name, "' has shape ", shape_str(it->second->shape()),
           ", the model expects ", shape_str(p.shape()), " (was it saved from a different model?)");
    }
  }
  if (by_name.size() != params.size()) {
    for (const auto& [name, value] : by_name) {
      bool known = false;
      for (const auto& [pname, p] : params) known = known || pname == name;
      if (!known)
        fail("load: ", path, ": unexpected tensor '", name, "' ", shape_str(value->shape()),
             " not in the model");
    }
  }
  for (auto& [name, p] : params) p.value() = std::move(*by_name[name]);
  return state;
}

}  // namespace tg
