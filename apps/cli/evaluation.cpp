// The evaluation loop shared by `tapegrad train` and `tapegrad eval` (evaluation.hpp).
#include "evaluation.hpp"

#include <algorithm>

namespace tg::cli {

Evaluation evaluate_model(Sequential& model, const ImageDataset& test, std::size_t classes,
                          std::size_t batch_size) {
  release_free_memory();  // the training step's free buffers: the evaluation's larger batches reuse the pages
  NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  Evaluation e;
  e.confusion.assign(classes, std::vector<std::size_t>(classes, 0));
  DataLoader loader(test, {.batch_size = batch_size, .shuffle = false});
  std::size_t index = 0;
  for (const Batch& batch : loader) {
    for (std::size_t i = 0; i < batch.labels.size(); ++i) {
      if (batch.labels[i] < 0 || static_cast<std::size_t>(batch.labels[i]) >= classes)
        fail("test example ", index + i, " has label ", batch.labels[i], ", but the model has ", classes,
             " classes");
    }
    const Tensor logits = model(batch.images);  // [B, classes]
    if (logits.shape().size() != 2 || logits.shape()[1] != classes)
      fail("the model's output is ", shape_str(logits.shape()), ", expected [", batch.labels.size(), ", ",
           classes, "]");
    e.loss += cross_entropy(logits, batch.labels).item() * static_cast<double>(batch.labels.size());
    const float* v = logits.value().data();
    for (std::size_t i = 0; i < batch.labels.size(); ++i, ++index) {
      const float* row = v + i * classes;
      const auto predicted = static_cast<int>(std::max_element(row, row + classes) - row);
      ++e.confusion[static_cast<std::size_t>(batch.labels[i])][static_cast<std::size_t>(predicted)];
      if (predicted == batch.labels[i])
        ++e.correct;
      else
        e.mistakes.push_back({index, predicted});
    }
  }
  model.train(was_training);
  e.loss /= static_cast<double>(test.size());
  e.accuracy = static_cast<double>(e.correct) / static_cast<double>(test.size());
  return e;
}

}  // namespace tg::cli
