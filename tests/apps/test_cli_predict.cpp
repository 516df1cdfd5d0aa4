// `tapegrad predict` (apps/cli/predict.cpp): names the digits of PNG files with a checkpoint `tapegrad train`
// wrote, and exits with the documented codes on bad input.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tapegrad.hpp"
#include "test_util.hpp"

namespace fs = std::filesystem;
using namespace test_util;

TEST_CASE(
    "tapegrad train trains, writes its outputs, and tapegrad predict names ten test digits written as PNG") {
  TempDir dir;
  const RunResult r = run(std::string(TG_TAPEGRAD_BIN) + " train --data " + kSmallMnist +
                          " --epochs 2 --threads 1 --out " + dir.path.string());
  INFO(r.output);
  REQUIRE(r.code == 0);
  CHECK(r.output.find("total parameters: 61,706") != std::string::npos);
  CHECK(r.output.find("epoch 2/2: train loss") != std::string::npos);
  CHECK(fs::exists(dir.file("model.safetensors")));
  CHECK(fs::file_size(dir.file("filters.png")) > 0);
  CHECK(fs::file_size(dir.file("mistakes.png")) > 0);
  const std::string csv = read_text(dir.file("metrics.csv"));
  CHECK(csv.rfind("epoch,train_loss,train_accuracy,test_loss,test_accuracy", 0) == 0);
  CHECK(std::count(csv.begin(), csv.end(), '\n') == 3);

  // one digit of each class that the trained model classifies correctly in-process
  tg::Sequential model = test_util::cpp_model("lenet");
  tg::load(model, dir.file("model.safetensors"));
  model.eval();
  tg::NoGradGuard no_grad;
  tg::MNIST test(kSmallMnist, tg::Split::Test);
  std::string args;
  std::vector<int> expected;
  for (int digit = 0; digit < 10; ++digit) {
    for (std::size_t i = 0; i < test.size(); ++i) {
      if (test.label(i) != digit) continue;
      tg::Array x = tg::Array::from_shape({1, 1, 28, 28});
      test.normalized(i, x.data());
      const tg::Array logits = model(tg::Tensor(x)).value();
      if (std::max_element(logits.begin(), logits.end()) - logits.begin() != digit) continue;
      const std::string png = dir.file("digit" + std::to_string(digit) + ".png");
      tg::write_png(png, std::vector<std::uint8_t>(test.pixels(i), test.pixels(i) + 784), 28, 28);
      args += " " + png;
      expected.push_back(digit);
      break;
    }
  }
  REQUIRE(expected.size() == 10);
  const RunResult p = run(std::string(TG_TAPEGRAD_BIN) + " predict " + dir.file("model.safetensors") + args);
  INFO(p.output);
  REQUIRE(p.code == 0);
  for (int digit : expected) {
    CHECK(p.output.find("digit" + std::to_string(digit) + ".png: " + std::to_string(digit) + "  (") !=
          std::string::npos);
  }
}

TEST_CASE("tapegrad predict exits 2 on usage errors and 1 on file errors or a checkpoint without its model") {
  TempDir dir;
  const std::string predict = TG_TAPEGRAD_BIN " predict";
  CHECK(run(predict).code == 2);
  std::ofstream(dir.file("not_a_model.safetensors")) << "garbage";
  std::ofstream(dir.file("not_an_image.png")) << "garbage";
  const RunResult bad_model =
      run(predict + " " + dir.file("not_a_model.safetensors") + " " + dir.file("not_an_image.png"));
  CHECK(bad_model.code == 1);
  CHECK(bad_model.output.find("not a safetensors file") != std::string::npos);
  tg::Sequential convnet = test_util::cpp_model("convnet");
  tg::save(convnet, dir.file("convnet.safetensors"),
           {{}, {{"model", "lenet"}}});  // as train_mnist wrote them: a name, no model text
  const RunResult old =
      run(predict + " " + dir.file("convnet.safetensors") + " " + dir.file("not_an_image.png"));
  CHECK(old.code == 1);
  CHECK(old.output.find("written by an older tapegrad") != std::string::npos);
}
