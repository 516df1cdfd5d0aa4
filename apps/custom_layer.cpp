// custom_layer: the `tapegrad` command line with two more layers. It registers the example's PReLU and SiLU
// (custom_layer.hpp) under the model-file names `prelu` and `silu`, then hands over to tg::cli::main, so
// train, eval, predict and summary all know them:
//
//   build/apps/custom_layer train --model apps/custom_layer.tg --data tests/fixtures/mnist_small --epochs 1
//   build/apps/custom_layer eval runs/custom_layer/model.safetensors
//   build/apps/custom_layer summary apps/custom_layer.tg --input 1x28x28
//
// A checkpoint of such a model names its layers, so eval and predict need the same registrations (this
// program, not plain `tapegrad`).
#include "custom_layer.hpp"
#include "tapegrad/cli.hpp"

int main(int argc, char** argv) {
  tg::register_layer("prelu", example::make_prelu);  // prelu [slope=0.25]: a learned negative slope
  tg::register_layer("silu", example::make_silu);    // silu: x * sigmoid(x), its own forward and backward
  return tg::cli::main(argc, argv);
}
