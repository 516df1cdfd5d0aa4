// A small program for the gdb tests (tests/gdb/run_gdb_test.cmake): a named model, one training step.
#include "tapegrad.hpp"

int main() {
  tg::manual_seed(0);
  tg::Sequential model(tg::Conv2D(1, 2, 3), tg::ReLU(), tg::MaxPool2D(2), tg::Flatten(), tg::Linear(8, 3));
  tg::Tensor images(tg::rand_uniform({2, 1, 6, 6}, 0.f, 1.f));
  images.set_name("images");
  tg::Tensor loss = tg::cross_entropy(model(images), {0, 2});
  loss.backward();
  return loss.item() > 0.f ? 0 : 1;
}
