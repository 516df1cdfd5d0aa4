#include "models.hpp"

namespace tg::apps {

const std::vector<std::string>& model_names() {
  static const std::vector<std::string> names = {"lenet", "convnet"};
  return names;
}

Sequential make_model(const std::string& name) {
  if (name == "lenet") {
    return Sequential(Conv2D(1, 6, 5, {.padding = {2, 2}}), ReLU(), MaxPool2D(2), Conv2D(6, 16, 5), ReLU(),
                      MaxPool2D(2), Flatten(), Linear(400, 120), ReLU(), Linear(120, 84), ReLU(),
                      Linear(84, 10));
  }
  if (name == "convnet") {
    return Sequential(Conv2D(1, 32, 3), ReLU(), Conv2D(32, 64, 3), ReLU(), MaxPool2D(2), Flatten(),
                      Linear(9216, 128), ReLU(), Linear(128, 10));
  }
  fail("unknown model '", name, "', expected lenet or convnet");
}

}  // namespace tg::apps
