// A small program for the gdb tests (tests/gdb/run_gdb_test.cmake): a named model, one training step. With
// the argument "model_file", the same model is built from a model file "net.tg" (tg::model_from_text), so
// that gdb shows each layer's model-file line; with "residual", a model file with a residual block
// ("res.tg": batch norm in the body, a shortcut section), so that gdb shows the nested names
// (3.body.0.Conv2D).
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

// Line numbers are what the gdb test checks: the block opens on line 5, its body's first conv is line 6.
const char* const kResidualText = R"(# res.tg: the gdb test's residual model
conv2d 2 3 padding=1
batchnorm2d
relu
residual
  conv2d 4 3 stride=2 padding=1 bias=false
  batchnorm2d
  relu
  conv2d in 3 padding=1 bias=false
shortcut
  conv2d 4 1 stride=2 bias=false
end
relu6
flatten
linear classes
)";

}  // namespace

int main(int argc, char** argv) {
  tg::manual_seed(0);
  const char* mode = argc > 1 ? argv[1] : "";
  tg::Sequential model =
      std::strcmp(mode, "model_file") == 0 ? tg::model_from_text(kNetText, {1, 6, 6}, 3, "net.tg")
      : std::strcmp(mode, "residual") == 0 ? tg::model_from_text(kResidualText, {1, 6, 6}, 3, "res.tg")
                                           : tg::Sequential(tg::Conv2D(1, 2, 3), tg::ReLU(), tg::MaxPool2D(2),
                                                            tg::Flatten(), tg::Linear(8, 3));
  tg::Tensor images(tg::rand_uniform({2, 1, 6, 6}, 0.f, 1.f));
  images.set_name("images");
  tg::Tensor loss = tg::cross_entropy(model(images), {0, 2});
  loss.backward();
  return loss.item() > 0.f ? 0 : 1;
}
