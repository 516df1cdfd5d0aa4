// A small program for the gdb tests (tests/gdb/run_gdb_test.cmake): a named model, one training step. With
// the argument "model_file", the same model is built from a model file "net.tg" (tg::model_from_text), so
// that gdb shows each layer's model-file line.
#include <cstring>

#include "tapegrad.hpp"

namespace {

// The C++ model below, as a model file.
const char* const kNetText = R"(# net.tg: the gdb test's model
conv2d 2 3
relu
maxpool2d 2
flatten
linear classes
)";

}  // namespace

int main(int argc, char** argv) {
  tg::manual_seed(0);
  const bool from_file = argc > 1 && std::strcmp(argv[1], "model_file") == 0;
  tg::Sequential model = from_file ? tg::model_from_text(kNetText, {1, 6, 6}, 3, "net.tg")
                                   : tg::Sequential(tg::Conv2D(1, 2, 3), tg::ReLU(), tg::MaxPool2D(2),
                                                    tg::Flatten(), tg::Linear(8, 3));
  tg::Tensor images(tg::rand_uniform({2, 1, 6, 6}, 0.f, 1.f));
  images.set_name("images");
  tg::Tensor loss = tg::cross_entropy(model(images), {0, 2});
  loss.backward();
  return loss.item() > 0.f ? 0 : 1;
}
