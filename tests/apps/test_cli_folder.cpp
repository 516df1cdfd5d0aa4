// `tapegrad train`, `eval` and `predict` on folders of images by class: the kind found from the folder, what
// it found printed, class names and normalization in the checkpoint, --val-split, --image-size, --channels,
// and the usage errors of the folder flags.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "cli/run_checkpoint.hpp"
#include "data/folder_files.hpp"
#include "tapegrad.hpp"
#include "test_util.hpp"

using namespace test_util;
namespace fs = std::filesystem;

namespace {

const std::string kSmallModel = "conv2d 4 3 padding=1\nrelu\nmaxpool2d 2\nflatten\nlinear classes\n";

// `tapegrad train` on data with a small model, 1 epoch, 1 thread, writing into out.
RunResult train_on(const fs::path& data, const TempDir& dir, const std::string& flags) {
  const std::string model = dir.file("small.tg");
  write_text(model, kSmallModel);
  return run(std::string(TG_TAPEGRAD_BIN) + " train --data '" + data.string() + "' --model " + model +
             " --epochs 1 --batch-size 8 --threads 1 --out " + dir.file("run") + " " + flags);
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("tapegrad train and eval on DIR/train/<class>/ and DIR/test/<class>/ colour PNGs") {
  TempDir dir, data;
  write_image_folder(data.path / "train", {"red fox", "owl", "bee"}, 8, 12, 10, 3, 0);
  write_image_folder(data.path / "test", {"red fox", "owl", "bee"}, 3, 12, 10, 3, 100);
  CHECK(tg::cli::data_spec("auto", data.path.string()).dataset == "folder");
  const RunResult trained = train_on(data.path, dir, "");
  INFO(trained.output);
  REQUIRE(trained.code == 0);
  CHECK(has(trained.output, "training images (" + data.path.string() +
                                "): found 24 images in 3 classes: bee 8, owl 8, red fox 8; 12x10 RGB"));
  CHECK(
      has(trained.output, "on folder (" + data.path.string() + "): 24 training / 9 test images, 3 classes"));
  tg::cli::Checkpoint ckpt = tg::cli::open_checkpoint(dir.file("run/model.safetensors"));
  CHECK(ckpt.info.dataset == "folder");
  CHECK(ckpt.info.input == tg::Shape{3, 12, 10});
  CHECK(ckpt.info.class_names == std::vector<std::string>{"bee", "owl", "red fox"});
  const tg::ImageFolder train(data.path.string(), tg::Split::Train);
  CHECK(ckpt.info.mean == train.channel_mean());
  CHECK(ckpt.info.std == train.channel_std());

  const RunResult evaluated =
      run(std::string(TG_TAPEGRAD_BIN) + " eval " + dir.file("run/model.safetensors"));
  INFO(evaluated.output);
  CHECK(evaluated.code == 0);
  CHECK(has(evaluated.output, "input 3x12x10, 3 classes, trained 1 epoch(s) on folder"));
  CHECK(has(evaluated.output, ": 9 images"));
  CHECK(has(evaluated.output, "red fox"));

  // predict converts a gray image of another size to the checkpoint's RGB 12x10: the same answer as the model
  // gives that image converted by load_image, to the printed digits.
  const std::string gray = dir.file("gray.png");
  std::vector<std::uint8_t> pixels(30 * 20);
  for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<std::uint8_t>(60 + i % 150);
  tg::write_png(gray, pixels, 20, 30);
  ckpt.model.eval();
  const tg::Array x = tg::load_image(
      gray, 12, 10, {.channels = 3, .channel_mean = ckpt.info.mean, .channel_std = ckpt.info.std});
  const RunResult predicted =
      run(std::string(TG_TAPEGRAD_BIN) + " predict " + dir.file("run/model.safetensors") + " " + gray);
  INFO(predicted.output);
  CHECK(predicted.code == 0);
  CHECK(has(predicted.output, gray + predicted_text(ckpt.model, x, ckpt.info.class_names)));
}

TEST_CASE(
    "tapegrad eval of a 10-class checkpoint on a folder with 12 classes exits 1 naming the unknown ones") {
  TempDir dir, data, other;
  std::vector<std::string> twelve;
  for (int c = 0; c < 12; ++c) twelve.push_back("c" + std::to_string(c + 10));  // sorted: c10 ... c21
  const std::vector<std::string> ten(twelve.begin(), twelve.begin() + 10);
  write_image_folder(data.path / "train", ten, 2, 8, 8);
  write_image_folder(data.path / "test", ten, 1, 8, 8, 1, 50);
  REQUIRE(train_on(data.path, dir, "").code == 0);
  write_image_folder(other.path / "test", twelve, 1, 8, 8);
  const RunResult r = run(std::string(TG_TAPEGRAD_BIN) + " eval " + dir.file("run/model.safetensors") +
                          " --data " + other.path.string());
  INFO(r.output);
  CHECK(r.code == 1);
  CHECK(has(r.output, "has 12 classes, 2 of them unknown to the model's 10"));
  CHECK(has(r.output, "c20, c21"));
}

TEST_CASE(
    "tapegrad train on one folder of classes needs --val-split, and eval takes the same held-out images") {
  TempDir dir, data;
  write_image_folder(data.path, {"a", "b"}, 10, 8, 8);
  const RunResult without = train_on(data.path, dir, "");
  INFO(without.output);
  CHECK(without.code == 2);
  CHECK(has(without.output,
            "holds class folders but no train/ and test/ folders: hold out a share of each class "
            "for testing with --val-split F"));
  const RunResult trained = train_on(data.path, dir, "--val-split 0.3 --seed 5");
  INFO(trained.output);
  REQUIRE(trained.code == 0);
  CHECK(has(trained.output, "14 training / 6 test images"));
  const RunResult evaluated =
      run(std::string(TG_TAPEGRAD_BIN) + " eval " + dir.file("run/model.safetensors"));
  INFO(evaluated.output);
  CHECK(evaluated.code == 0);
  CHECK(has(evaluated.output, ": 6 images"));
}

TEST_CASE(
    "--image-size and --channels convert a folder of mixed sizes; the folder flags are usage errors "
    "elsewhere") {
  TempDir dir, data;
  write_image_folder(data.path / "train", {"a"}, 4, 8, 8, 3);
  write_image_folder(data.path / "train", {"b"}, 4, 10, 6, 1, 10);
  write_image_folder(data.path / "test", {"a", "b"}, 2, 9, 9, 1, 20);
  const RunResult mixed = train_on(data.path, dir, "");
  INFO(mixed.output);
  CHECK(mixed.code == 1);
  CHECK(has(mixed.output, "different sizes (8x8 (4), 10x6 (4)); choose one with --image-size HxW"));
  const RunResult sized = train_on(data.path, dir, "--image-size 7x9 --channels 1");
  INFO(sized.output);
  REQUIRE(sized.code == 0);
  CHECK(tg::cli::open_checkpoint(dir.file("run/model.safetensors")).info.input == tg::Shape{1, 7, 9});
  const RunResult bad_size = train_on(data.path, dir, "--image-size 7y9");
  CHECK(bad_size.code == 2);
  CHECK(has(bad_size.output, "--image-size 7y9: expected HxW or N"));
  const RunResult bad_channels = train_on(data.path, dir, "--image-size 8 --channels 2");
  CHECK(bad_channels.code == 2);
  const RunResult on_mnist = train_on(TG_FIXTURE_DIR "/mnist_small", dir, "--image-size 8");
  CHECK(on_mnist.code == 2);
  CHECK(has(on_mnist.output, "--image-size is for folders of images by class"));
  const RunResult resized_resume = run(std::string(TG_TAPEGRAD_BIN) + " train --resume " +
                                       dir.file("run/model.safetensors") + " --epochs 2 --image-size 8x8");
  CHECK(resized_resume.code == 2);
  CHECK(has(resized_resume.output, "--image-size 8x8 differs from the checkpoint's 7x9"));
}

TEST_CASE("tapegrad train on a folder with a bad image names it; --skip-bad-images trains without it") {
  TempDir dir, data;
  write_image_folder(data.path / "train", {"a", "b"}, 6, 8, 8);
  write_image_folder(data.path / "test", {"a", "b"}, 2, 8, 8, 1, 20);
  write_bytes((data.path / "train" / "b" / "broken.jpg").string(), {});
  write_bytes((data.path / "train" / "b" / ".DS_Store").string(), {1, 2});
  const RunResult stopped = train_on(data.path, dir, "");
  INFO(stopped.output);
  CHECK(stopped.code == 1);
  CHECK(has(stopped.output,
            "broken.jpg: empty file, expected an image; fix or remove it, or pass "
            "--skip-bad-images"));
  const RunResult skipped = train_on(data.path, dir, "--skip-bad-images");
  INFO(skipped.output);
  CHECK(skipped.code == 0);
  CHECK(has(skipped.output, "found 12 images in 2 classes: a 6, b 6; 8x8 gray; skipped 1 bad image(s)"));
}

TEST_CASE(
    "tapegrad predict on a gray image-folder checkpoint takes images as they are (no MNIST inversion)") {
  TempDir dir, data;
  const std::vector<std::string> classes{"c0", "c1", "c2", "c3", "c4"};
  write_image_folder(data.path / "train", classes, 6, 8, 8);
  write_image_folder(data.path / "test", classes, 1, 8, 8, 1, 50);
  REQUIRE(train_on(data.path, dir, "").code == 0);
  tg::cli::Checkpoint ckpt = tg::cli::open_checkpoint(dir.file("run/model.safetensors"));
  ckpt.model.eval();
  const tg::ImageFolder test(
      data.path.string(), tg::Split::Test,
      {.classes = ckpt.info.class_names, .mean = ckpt.info.mean, .std = ckpt.info.std});
  for (std::size_t i = 0; i < test.size(); ++i) {
    if (test.label(i) != 4) continue;  // a light image (mean byte ~171): --invert auto would turn it dark
    const std::string expected = predicted_text(ckpt.model, test, i, classes);
    const RunResult predicted = run(std::string(TG_TAPEGRAD_BIN) + " predict " +
                                    dir.file("run/model.safetensors") + " " + test.file(i));
    INFO(predicted.output);
    CHECK(predicted.code == 0);
    CHECK(has(predicted.output, expected));
  }
}

TEST_CASE("A folder run with --val-split and --augment resumed after epoch 1 ends as the uninterrupted run") {
  TempDir dir, resumed_dir, data;
  write_image_folder(data.path, {"a", "b", "c"}, 8, 8, 8, 3);
  const std::string flags =
      "--val-split 0.25 --augment flip,crop=2 --seed 3 --schedule constant";  // cosine depends on --epochs
  const std::string model = dir.file("small.tg");
  write_text(model, kSmallModel);
  const std::string common = std::string(TG_TAPEGRAD_BIN) + " train --data " + data.path.string() +
                             " --model " + model + " --batch-size 4 --threads 1 " + flags;
  REQUIRE(run(common + " --epochs 2 --out " + dir.file("whole")).code == 0);
  REQUIRE(run(common + " --epochs 1 --out " + resumed_dir.file("run")).code == 0);
  const RunResult resumed = run(std::string(TG_TAPEGRAD_BIN) + " train --resume " +
                                resumed_dir.file("run/model.safetensors") + " --epochs 2 --threads 1");
  INFO(resumed.output);
  REQUIRE(resumed.code == 0);
  CHECK(same_tensors(dir.file("whole/model.safetensors"), resumed_dir.file("run/model.safetensors")));
}

TEST_CASE("tapegrad train on DIR/train/ without DIR/test/ stops before reading the training images") {
  TempDir dir, data;
  write_image_folder(data.path / "train", {"a", "b"}, 4, 8, 8);
  const RunResult r = train_on(data.path, dir, "");
  INFO(r.output);
  CHECK(r.code == 1);
  CHECK(has(r.output, "has a train/ folder but no test/ (nor val/ or validation/) beside it"));
  CHECK_FALSE(has(r.output, "training images ("));
}

TEST_CASE("tapegrad train on an image folder reports a model-file error before decoding any image") {
  TempDir dir, data;
  write_image_folder(data.path / "train", {"a", "b"}, 6, 8, 8);
  write_image_folder(data.path / "test", {"a", "b"}, 2, 8, 8, 1, 20);
  write_bytes((data.path / "train" / "b" / "broken.png").string(), {1, 2, 3});  // decoding it fails
  const std::string bad_model = dir.file("bad.tg");
  const std::string text = "conv2d 4 3\nrelu\nlinear classes\n";  // no flatten before linear
  write_text(bad_model, text);
  const std::string train = std::string(TG_TAPEGRAD_BIN) + " train --data " + data.path.string() +
                            " --epochs 1 --threads 1 --out " + dir.file("run");

  const RunResult r = run(train + " --model " + bad_model);
  INFO(r.output);
  CHECK(r.code == 2);
  CHECK(has(r.output, "bad.tg:3: linear"));
  CHECK(has(r.output, "input is [4, 6, 6]"));  // the shape of 8x8 images, known from the PNG headers
  CHECK_FALSE(has(r.output, "broken.png"));    // never decoded
  CHECK_FALSE(has(r.output, "training images ("));

  // The same folder with a model that fits: the broken image is decoded and reported.
  const RunResult decoded = train_on(data.path, dir, "");
  CHECK(decoded.code == 1);
  CHECK(has(decoded.output, "broken.png"));
}
