// Checkpoints: a module's parameters and buffers (Module::named_state) in a safetensors file under their
// PyTorch state_dict names and in state_dict order, so a file maps one-to-one onto an nn.Sequential of the
// same layers. Training checkpoints add optimizer state ("optimizer.<name>") and metadata (epoch, ...).
// Every tensor is stored as float32, buffers included: a counter such as BatchNorm's num_batches_tracked,
// int64 in PyTorch, is float32 here (exact up to 2^24). PyTorch 1.13's load_state_dict(strict=True) takes it
// as it is (copy_ casts to the buffer's int64).
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/io/npy.hpp"
#include "core/io/safetensors.hpp"
#include "layers/module.hpp"

namespace tg {

// What a training checkpoint holds beside the parameters and buffers.
struct TrainingState {
  std::vector<std::pair<std::string, Array>> optimizer;  // e.g. Optimizer::state()
  std::map<std::string, std::string> metadata;           // e.g. {"epoch": "2"}
};

// Writes the tensor's value as a numpy .npy file (core/io/npy.hpp); from gdb: `call tg::dump_npy(x,
// "/tmp/x.npy")`. It lives beside the checkpoints because autograd includes no file format.
void dump_npy(const Tensor& tensor, const std::string& path);

// Atomic (temp file + rename): a failed save leaves the previous file intact.
void save(const Module& model, const std::string& path, const TrainingState& state = {});

// Checks the name and shape of every parameter and buffer first and changes nothing unless all match: throws
// tg::Error naming the file and the first missing, unexpected or mis-shaped tensor. Returns the file's
// optimizer state and metadata.
TrainingState load(Module& model, const std::string& path);

}  // namespace tg
