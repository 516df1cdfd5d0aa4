// `tapegrad eval --int8` and `tapegrad predict --int8` (apps/cli/int8.cpp, docs/int8.md): a trained model
// quantized at load keeps its accuracy and its predictions, the checkpoint is not changed, the plain C++
// kernels give the same figures as VNNI, and the errors and the saturation warning say what to do.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tapegrad.hpp"
#include "test_util.hpp"

namespace fs = std::filesystem;
using namespace test_util;

namespace {

const std::string kInt8Bin = TG_TAPEGRAD_BIN;

// "accuracy 97.50%" -> 97.5
double accuracy_in(const std::string& output) {
  const std::size_t at = output.find("accuracy ");
  REQUIRE(at != std::string::npos);
  return std::atof(output.c_str() + at + 9);
}

// An IDX pair (images, labels) of n black 28x28 images under `dir` with the given prefix ("train", "t10k").
void write_black_idx(const std::string& dir, const std::string& prefix, std::uint32_t n) {
  auto be = [](std::vector<std::uint8_t>& b, std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<std::uint8_t>(v >> s));
  };
  std::vector<std::uint8_t> images, labels;
  be(images, 0x803), be(images, n), be(images, 28), be(images, 28);
  images.resize(images.size() + n * 784, 0);
  be(labels, 0x801), be(labels, n);
  for (std::uint32_t i = 0; i < n; ++i) labels.push_back(static_cast<std::uint8_t>(i % 10));
  write_bytes(dir + "/" + prefix + "-images-idx3-ubyte", images);
  write_bytes(dir + "/" + prefix + "-labels-idx1-ubyte", labels);
}

// A model with batch norms (folded) and a residual block, trained briefly on the small MNIST set.
const char* kModel =
    "conv2d 8 3 padding=1\nbatchnorm2d\nrelu\nmaxpool2d 2\n"
    "residual\n  conv2d 8 3 padding=1\n  batchnorm2d\n  relu\n  conv2d 8 3 padding=1\n  "
    "batchnorm2d\nend\nrelu\n"
    "maxpool2d 2\nflatten\nlinear 32\nrelu\nlinear classes\n";

}  // namespace

TEST_CASE(
    "tapegrad eval --int8 and predict --int8: the accuracy and the classes of float32, the checkpoint "
    "unchanged") {
  TempDir dir;
  write_text(dir.file("net.tg"), kModel);
  const RunResult t = run(kInt8Bin + " train --model " + dir.file("net.tg") + " --data " + kSmallMnist +
                          " --epochs 3 --threads 1 --out " + dir.path.string());
  INFO(t.output);
  REQUIRE(t.code == 0);
  const std::string ckpt = dir.file("model.safetensors");
  const std::string before = read_text(ckpt);

  const RunResult fp32 = run(kInt8Bin + " eval " + ckpt + " --out " + dir.file("fp32"));
  const RunResult int8 = run(kInt8Bin + " eval " + ckpt + " --int8 --out " + dir.file("int8"));
  INFO(fp32.output);
  INFO(int8.output);
  REQUIRE(fp32.code == 0);
  REQUIRE(int8.code == 0);
  CHECK(int8.output.find("int8: 3 conv(s) and 2 linear layer(s) quantized (batch norm folded into 3), "
                         "calibrated on 512 training images of " +
                         kSmallMnist) != std::string::npos);
  CHECK(int8.output.find("; run in int8") != std::string::npos);
  CHECK(fp32.output.find("int8") == std::string::npos);
  const double a32 = accuracy_in(fp32.output), a8 = accuracy_in(int8.output);
  MESSAGE("small MNIST test set: fp32 ", a32, "%, int8 ", a8, "%");
  CHECK(a32 > 60.0);
  CHECK(std::abs(a32 - a8) <= 2.0);
  CHECK(read_text(ckpt) == before);  // never changed by --int8

  // Without VNNI: the plain C++ kernels, the same integer sums, so the same figures.
  const RunResult plain =
      run("TAPEGRAD_NO_VNNI=1 " + kInt8Bin + " eval " + ckpt + " --int8 --out " + dir.file("plain"));
  INFO(plain.output);
  REQUIRE(plain.code == 0);
  CHECK(plain.output.find("hidden (TAPEGRAD_NO_VNNI is set)") != std::string::npos);
  auto figures = [](const std::string& out) {
    const std::size_t from = out.find("accuracy "), to = out.find("\nwrote ");
    REQUIRE(from != std::string::npos);
    REQUIRE(to != std::string::npos);
    return out.substr(from, to - from);  // accuracy, loss, per-class table, confusion matrix
  };
  CHECK(figures(plain.output) == figures(int8.output));

  // predict --int8 names the same classes as predict for images of the test set.
  tg::MNIST test(kSmallMnist, tg::Split::Test);
  std::string args;
  for (std::size_t i = 0; i < 20; ++i) {
    const std::string png = dir.file("img" + std::to_string(i) + ".png");
    tg::write_png(png, std::vector<std::uint8_t>(test.pixels(i), test.pixels(i) + 784), 28, 28);
    args += " " + png;
  }
  const RunResult p32 = run(kInt8Bin + " predict " + ckpt + " --invert never --top 1" + args);
  const RunResult p8 = run(kInt8Bin + " predict " + ckpt + " --invert never --top 1 --int8" + args);
  INFO(p32.output);
  INFO(p8.output);
  REQUIRE(p32.code == 0);
  REQUIRE(p8.code == 0);
  std::size_t same = 0;
  for (std::size_t i = 0; i < 20; ++i) {
    const std::string tag = "img" + std::to_string(i) + ".png: ";
    const std::size_t a = p32.output.find(tag), b = p8.output.find(tag);
    REQUIRE(a != std::string::npos);
    REQUIRE(b != std::string::npos);
    same += p32.output.substr(a, tag.size() + 2) == p8.output.substr(b, tag.size() + 2) ? 1 : 0;
  }
  CHECK(same >= 19);

  // Calibrated on black images, the real ones saturate the first conv's input: a warning names the layer.
  fs::create_directories(dir.file("black"));
  write_black_idx(dir.file("black"), "train", 64);
  write_black_idx(dir.file("black"), "t10k", 10);
  const RunResult saturated = run(kInt8Bin + " eval " + ckpt + " --int8 --calibrate " + dir.file("black") +
                                  " --out " + dir.file("sat"));
  INFO(saturated.output);
  REQUIRE(saturated.code == 0);
  CHECK(saturated.output.find("warning: int8: 0.Conv2D at " + dir.file("net.tg") + ":1: ") !=
        std::string::npos);
  CHECK(saturated.output.find("of its input values fell outside the calibrated range") != std::string::npos);
  CHECK(int8.output.find("warning") == std::string::npos);
}

TEST_CASE("tapegrad eval --int8: no calibration data is a usage error saying to give --calibrate DIR") {
  TempDir dir;
  fs::create_directories(dir.file("data"));
  for (const char* f : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"})
    fs::copy_file(kSmallMnist + "/" + f, dir.file("data") + "/" + f);
  const RunResult t = run(kInt8Bin + " train --data " + dir.file("data") +
                          " --epochs 1 --limit 200 --threads 1 --out " + dir.path.string());
  INFO(t.output);
  REQUIRE(t.code == 0);
  const std::string ckpt = dir.file("model.safetensors");

  const RunResult no_flag = run(kInt8Bin + " eval " + ckpt + " --calibrate " + dir.file("data"));
  CHECK(no_flag.code == 2);
  CHECK(no_flag.output.find("--calibrate is for --int8") != std::string::npos);

  const RunResult missing = run(kInt8Bin + " eval " + ckpt + " --int8 --calibrate " + dir.file("nowhere"));
  INFO(missing.output);
  CHECK(missing.code == 2);
  CHECK(missing.output.find("the calibration data " + dir.file("nowhere") + " is not there") !=
        std::string::npos);
  CHECK(missing.output.find("--calibrate DIR") != std::string::npos);

  // The data it trained on is gone: eval reads the test set from --data, calibration has nothing.
  fs::rename(dir.file("data"), dir.file("moved"));
  const RunResult gone = run(kInt8Bin + " eval " + ckpt + " --int8 --data " + dir.file("moved"));
  INFO(gone.output);
  CHECK(gone.code == 2);
  CHECK(gone.output.find("(the folder " + ckpt + " trained on)") != std::string::npos);
  const RunResult given = run(kInt8Bin + " eval " + ckpt + " --int8 --data " + dir.file("moved") +
                              " --calibrate " + dir.file("moved") + " --out " + dir.path.string());
  INFO(given.output);
  CHECK(given.code == 0);
  CHECK(given.output.find("; run in int8") != std::string::npos);

  // An .onnx file records no training data: eval calibrates on --data's training split, predict needs
  // --calibrate.
  REQUIRE(run(kInt8Bin + " export " + ckpt + " " + dir.file("model.onnx")).code == 0);
  const RunResult onnx = run(kInt8Bin + " eval " + dir.file("model.onnx") + " --int8 --data " +
                             dir.file("moved") + " --out " + dir.path.string());
  INFO(onnx.output);
  CHECK(onnx.code == 0);
  CHECK(onnx.output.find("calibrated on 512 training images of " + dir.file("moved")) != std::string::npos);
  tg::MNIST test(dir.file("moved"), tg::Split::Test);
  const std::string png = dir.file("digit.png");
  tg::write_png(png, std::vector<std::uint8_t>(test.pixels(0), test.pixels(0) + 784), 28, 28);
  const RunResult uncalibrated = run(kInt8Bin + " predict " + dir.file("model.onnx") + " " + png + " --int8");
  INFO(uncalibrated.output);
  CHECK(uncalibrated.code == 2);
  CHECK(
      uncalibrated.output.find("records no training data to calibrate on (an imported model); give a folder "
                               "of its training images with --calibrate DIR") != std::string::npos);
  const RunResult calibrated = run(kInt8Bin + " predict " + dir.file("model.onnx") + " " + png +
                                   " --int8 --calibrate " + dir.file("moved"));
  INFO(calibrated.output);
  CHECK(calibrated.code == 0);
  CHECK(calibrated.output.find("digit.png: ") != std::string::npos);
}
