// `tapegrad train` and `tapegrad eval` on CIFAR-10's binary batches (3x32x32 colour images): the data set's
// kind found from the folder's files, a checkpoint with the class names and per-channel normalization, and
// the error when a folder holds neither MNIST's nor CIFAR-10's files.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "cli/run_checkpoint.hpp"
#include "data/cifar_files.hpp"
#include "tapegrad.hpp"
#include "test_util.hpp"

using namespace test_util;

namespace {

const std::vector<std::string> kNames{"plane", "car",  "bird",  "cat",  "deer",
                                      "dog",   "frog", "horse", "ship", "lorry"};

}  // namespace

TEST_CASE("tapegrad train then eval on CIFAR-10 binary batches with a 3-channel model file") {
  TempDir dir;
  TempDir data;
  write_small_cifar(data, kNames);
  const std::string model = dir.file("small.tg");
  const std::string text = "conv2d 8 3 padding=1\nrelu\nmaxpool2d 2\nflatten\nlinear classes\n";
  write_text(model, text);
  const RunResult trained =
      run(std::string(TG_TAPEGRAD_BIN) + " train --data " + data.path.string() + " --model " + model +
          " --epochs 1 --batch-size 10 --threads 1 --out " + dir.file("run"));
  INFO(trained.output);
  REQUIRE(trained.code == 0);
  CHECK(trained.output.find("on cifar10 (" + data.path.string() + "): 50 training / 20 test images") !=
        std::string::npos);
  CHECK(std::filesystem::exists(dir.file("run/mistakes.png")));
  {  // in colour: the PNG header's colour type (byte 25) is 2, RGB
    std::ifstream png(dir.file("run/mistakes.png"), std::ios::binary);
    std::vector<char> header(26);
    png.read(header.data(), 26);
    CHECK(png.gcount() == 26);
    CHECK(header[25] == 2);
  }
  CHECK(std::filesystem::exists(dir.file("run/filters.png")));

  const tg::cli::Checkpoint ckpt = tg::cli::open_checkpoint(dir.file("run/model.safetensors"));
  CHECK(ckpt.info.dataset == "cifar10");
  CHECK(ckpt.info.input == tg::Shape{3, 32, 32});
  CHECK(ckpt.info.class_names == kNames);
  const tg::CIFAR10 train(data.path.string(), tg::Split::Train);
  CHECK(ckpt.info.mean == train.channel_mean());
  CHECK(ckpt.info.std == train.channel_std());

  const RunResult evaluated =
      run(std::string(TG_TAPEGRAD_BIN) + " eval " + dir.file("run/model.safetensors"));
  INFO(evaluated.output);
  CHECK(evaluated.code == 0);
  CHECK(evaluated.output.find("input 3x32x32, 10 classes, trained 1 epoch(s) on cifar10") !=
        std::string::npos);
  CHECK(evaluated.output.find(": 20 images") != std::string::npos);
  CHECK(evaluated.output.find("lorry") != std::string::npos);
  CHECK(std::filesystem::exists(dir.file("run/eval_confusion.csv")));

  // predict on a colour checkpoint: a test image written as an RGB PNG gets the class the model gives the
  // same image from the batch file (the same pixels and the checkpoint's per-channel normalization), with the
  // same probability to the printed digits; a grayscale image is converted to 3 channels.
  const tg::CIFAR10 test(data.path.string(), tg::Split::Test, train.channel_mean(), train.channel_std());
  tg::cli::Checkpoint loaded = tg::cli::open_checkpoint(dir.file("run/model.safetensors"));
  loaded.model.eval();
  for (std::size_t i = 0; i < 3; ++i) {
    std::vector<std::uint8_t> rgb(3 * 32 * 32);
    for (std::size_t c = 0; c < 3; ++c)
      for (std::size_t k = 0; k < 32 * 32; ++k) rgb[3 * k + c] = test.pixels(i)[c * 32 * 32 + k];
    const std::string png = dir.file("test" + std::to_string(i) + ".png");
    tg::write_png(png, rgb, 32, 32, 3);
    const std::string expected = png + predicted_text(loaded.model, test, i, kNames);
    const RunResult predicted =
        run(std::string(TG_TAPEGRAD_BIN) + " predict " + dir.file("run/model.safetensors") + " " + png);
    INFO(predicted.output);
    CHECK(predicted.code == 0);
    CHECK(predicted.output.find(expected) != std::string::npos);
  }
  const std::string gray = dir.file("gray.png");
  tg::write_png(gray, std::vector<std::uint8_t>(20 * 24, 200), 20, 24);
  const RunResult from_gray =
      run(std::string(TG_TAPEGRAD_BIN) + " predict " + dir.file("run/model.safetensors") + " " + gray);
  INFO(from_gray.output);
  CHECK(from_gray.code == 0);
  CHECK(from_gray.output.find(gray + ": ") != std::string::npos);
}

TEST_CASE("--dataset auto finds CIFAR-10 or MNIST from the folder's files") {
  TempDir cifar;
  write_small_cifar(cifar, kNames);
  const tg::cli::DataSpec spec = tg::cli::data_spec("auto", cifar.path.string());
  CHECK(spec.dataset == "cifar10");
  CHECK(spec.class_names == kNames);
  CHECK(tg::cli::data_spec("auto", TG_FIXTURE_DIR "/mnist_small").dataset == "mnist");
  // A test batch alone is enough to say CIFAR-10 (eval of a folder without training batches).
  TempDir test_only;
  write_bytes(test_only.file("test_batch.bin"), cifar_batch(0, 2));
  CHECK(tg::cli::data_spec("auto", test_only.path.string()).dataset == "cifar10");
}

TEST_CASE("tapegrad train on a folder with neither MNIST's nor CIFAR-10's files exits 1 naming both") {
  TempDir dir;
  const RunResult r =
      run(std::string(TG_TAPEGRAD_BIN) + " train --data " + dir.path.string() + " --out " + dir.file("run"));
  INFO(r.output);
  CHECK(r.code == 1);
  CHECK(r.output.find("cannot find a data set in " + dir.path.string()) != std::string::npos);
  for (const char* name :
       {"train-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "data_batch_1.bin", "test_batch.bin",
        "fetch_mnist.sh", "cifar-10-binary.tar.gz", "/train/<class>/", "--val-split"})
    CHECK(r.output.find(name) != std::string::npos);
  // --dataset cifar10 on MNIST's folder: CIFAR-10's own message.
  const RunResult wrong =
      run(std::string(TG_TAPEGRAD_BIN) +
          " train --dataset cifar10 --data " TG_FIXTURE_DIR "/mnist_small --out " + dir.file("run"));
  CHECK(wrong.code == 1);
  CHECK(wrong.output.find("CIFAR-10: cannot find " TG_FIXTURE_DIR "/mnist_small/data_batch_1.bin") !=
        std::string::npos);
}

TEST_CASE("tapegrad train on CIFAR-10 reports a model-file error before reading the batches") {
  TempDir dir, data;
  write_small_cifar(data, kNames);
  std::vector<std::uint8_t> truncated = cifar_batch(0, 30);
  truncated.resize(truncated.size() - 100);  // not a whole number of records: reading it fails
  write_bytes(data.file("data_batch_1.bin"), truncated);
  const std::string bad_model = dir.file("bad.tg");
  const std::string text = "conv2d 4 3\nlinear classes\n";  // no flatten before linear
  write_text(bad_model, text);
  const std::string train = std::string(TG_TAPEGRAD_BIN) + " train --data " + data.path.string() +
                            " --epochs 1 --threads 1 --out " + dir.file("run") + " --model ";

  const RunResult r = run(train + bad_model);
  INFO(r.output);
  CHECK(r.code == 2);
  CHECK(r.output.find("bad.tg:2: linear") != std::string::npos);
  CHECK(r.output.find("input is [4, 30, 30]") != std::string::npos);
  CHECK(r.output.find("data_batch_1.bin") == std::string::npos);

  const RunResult read = run(train + "lenet");  // a model that builds: the batch is read and refused
  INFO(read.output);
  CHECK(read.code != 0);
  CHECK(read.output.find("data_batch_1.bin") != std::string::npos);
}
