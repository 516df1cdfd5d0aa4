// `tapegrad train` and `tapegrad eval` on CIFAR-10's binary batches (3x32x32 colour images): the data set's
// kind found from the folder's files, a checkpoint with the class names and per-channel normalization, and
// the error when a folder holds neither MNIST's nor CIFAR-10's files.
#include <doctest/doctest.h>

#include <filesystem>
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
  write_bytes(model, std::vector<std::uint8_t>(text.begin(), text.end()));
  const RunResult trained =
      run(std::string(TG_TAPEGRAD_BIN) + " train --data " + data.path.string() + " --model " + model +
          " --epochs 1 --batch-size 10 --threads 1 --out " + dir.file("run"));
  INFO(trained.output);
  REQUIRE(trained.code == 0);
  CHECK(trained.output.find("on cifar10 (" + data.path.string() + "): 50 training / 20 test images") !=
        std::string::npos);
  CHECK(std::filesystem::exists(dir.file("run/mistakes.png")));
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

  // predict reads one-channel checkpoints only, for now: a clear error, not a crash.
  const RunResult predicted =
      run(std::string(TG_TAPEGRAD_BIN) + " predict " + dir.file("run/model.safetensors") + " " + model);
  CHECK(predicted.code == 1);
  CHECK(predicted.output.find("takes 3x32x32 inputs; predict reads one-channel") != std::string::npos);
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
  for (const char* name : {"train-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "data_batch_1.bin",
                           "test_batch.bin", "fetch_mnist.sh", "cifar-10-binary.tar.gz"})
    CHECK(r.output.find(name) != std::string::npos);
  // --dataset cifar10 on MNIST's folder: CIFAR-10's own message.
  const RunResult wrong =
      run(std::string(TG_TAPEGRAD_BIN) +
          " train --dataset cifar10 --data " TG_FIXTURE_DIR "/mnist_small --out " + dir.file("run"));
  CHECK(wrong.code == 1);
  CHECK(wrong.output.find("CIFAR-10: cannot find " TG_FIXTURE_DIR "/mnist_small/data_batch_1.bin") !=
        std::string::npos);
}
