// apps/custom_layer: the whole `tapegrad` command line with the example's prelu and silu registered. It
// trains the model file apps/custom_layer.tg on the shipped MNIST subset, evaluates the checkpoint,
// summarizes the file, and reports a bad key of a custom layer as a file:line: usage error (exit code 2).
#include <doctest/doctest.h>

#include <fstream>
#include <string>

#include "test_util.hpp"

using namespace test_util;

namespace {

const std::string kCustomModelFile = TAPEGRAD_SOURCE_DIR "/apps/custom_layer.tg";
const std::string kCustomLayer = TG_CUSTOM_LAYER_BIN;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("custom_layer trains a model file with prelu and silu, and evaluates its checkpoint") {
  TempDir dir;
  const RunResult train = run(kCustomLayer + " train --model " + kCustomModelFile + " --data " + kSmallMnist +
                              " --limit 256 --epochs 1 --threads 1 --seed 3 --out " + dir.path.string());
  INFO(train.output);
  REQUIRE(train.code == 0);
  CHECK(contains(train.output, "PReLU(initial slope 0.1)"));  // the model summary lists the custom layers
  CHECK(contains(train.output, "SiLU"));
  CHECK(contains(train.output, "test accuracy"));
  const std::string checkpoint = dir.file("model.safetensors");

  const RunResult eval =
      run(kCustomLayer + " eval " + checkpoint + " --data " + kSmallMnist + " --threads 1");
  INFO(eval.output);
  REQUIRE(eval.code == 0);
  CHECK(contains(eval.output, "custom_layer.tg"));
  CHECK(contains(eval.output, "accuracy"));
  CHECK(contains(eval.output, "1,000 images"));

  // Plain `tapegrad` has not registered the layers: the checkpoint's model text names one it does not know
  // (a file error, exit code 1).
  const RunResult plain =
      run(std::string(TG_TAPEGRAD_BIN) + " eval " + checkpoint + " --data " + kSmallMnist);
  INFO(plain.output);
  CHECK(plain.code == 1);
  CHECK(contains(plain.output, "unknown layer 'prelu'"));
}

TEST_CASE("custom_layer summary lists prelu and silu with their shapes and parameters") {
  const RunResult r = run(kCustomLayer + " summary " + kCustomModelFile + " --input 1x28x28");
  INFO(r.output);
  REQUIRE(r.code == 0);
  CHECK(contains(r.output, "PReLU(initial slope 0.1)"));
  CHECK(contains(r.output, "PReLU(initial slope 0.25)"));
  CHECK(contains(r.output, "SiLU"));
  CHECK(contains(r.output, "[1, 6, 28, 28]"));  // the first prelu keeps conv2d's shape
}

TEST_CASE("custom_layer: an unknown key of a custom layer is a file:line: error with exit code 2") {
  TempDir dir;
  const std::string model = dir.file("bad.tg");
  std::ofstream(model) << "flatten\nprelu slop=0.1\nlinear classes\n";
  for (const std::string& command : {kCustomLayer + " summary " + model + " --input 1x28x28",
                                     kCustomLayer + " train --model " + model + " --data " + kSmallMnist +
                                         " --limit 64 --out " + dir.file("run")}) {
    const RunResult r = run(command);
    INFO(command, "\n", r.output);
    CHECK(r.code == 2);
    CHECK(contains(r.output, model + ":2: prelu: unknown key 'slop' (did you mean 'slope'? allowed: slope)"));
  }
}
