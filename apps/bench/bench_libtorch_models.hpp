// The models of bench_libtorch (libtorch, PyTorch's C++ frontend), built as apps/bench/bench_torch.py builds
// them: the same modules in the same order, so that torch::manual_seed gives both the same initialization and
// scripts/bench.py's step-loss check can compare them. Each is the twin of the model tapegrad's bench_train
// trains (apps/models/NAME.tg).
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

namespace bench {

// lenet and convnet train on MNIST; the others on random 3x32x32 images.
const std::vector<std::string>& model_names();
bool random_data_model(const std::string& name);

// The model NAME (one of model_names()), its parameters drawn from torch's generator as it is.
torch::nn::Sequential make_model(const std::string& name);

}  // namespace bench
