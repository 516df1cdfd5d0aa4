// The evaluation loop of `tapegrad train` (after every epoch) and `tapegrad eval`: a model's loss, accuracy,
// confusion matrix and mistakes on a test set, in eval mode and without recording.
#pragma once

#include <cstddef>
#include <vector>

#include "tapegrad.hpp"

namespace tg::cli {

// A test example the model got wrong: its index in the test set and the class it was taken for.
struct Mistake {
  std::size_t index = 0;
  int predicted = 0;
};

struct Evaluation {
  double loss = 0, accuracy = 0;  // the mean cross-entropy; the share of examples right
  std::size_t correct = 0;
  std::vector<std::vector<std::size_t>> confusion;  // [true][predicted]: examples of class t taken for p
  std::vector<Mistake> mistakes;                    // in test order
};

// `classes`: the model's outputs; the confusion matrix is classes x classes. tg::Error for a label outside
// [0, classes). The model is left in the mode (train or eval) it was in.
Evaluation evaluate_model(Sequential& model, const ImageDataset& test, std::size_t classes,
                          std::size_t batch_size = 1000);

}  // namespace tg::cli
