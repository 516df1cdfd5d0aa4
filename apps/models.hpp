// The models the apps know by name (../shared/BENCHMARKS.md): train_mnist builds them, predict and the
// benchmarks rebuild them from a checkpoint's "model" metadata.
#pragma once

#include <string>
#include <vector>

#include "tapegrad.hpp"

namespace tg::apps {

// "lenet": Conv2D(1,6,5,pad 2) ReLU MaxPool2D(2) Conv2D(6,16,5) ReLU MaxPool2D(2) Flatten
//          Linear(400,120) ReLU Linear(120,84) ReLU Linear(84,10)            61,706 parameters
// "convnet": Conv2D(1,32,3) ReLU Conv2D(32,64,3) ReLU MaxPool2D(2) Flatten Linear(9216,128) ReLU
//            Linear(128,10)                                                  1,199,882 parameters
// Throws tg::Error for another name.
Sequential make_model(const std::string& name);
const std::vector<std::string>& model_names();

}  // namespace tg::apps
