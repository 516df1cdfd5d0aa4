// Numbers that go wrong, images that are not images, and the same result every time.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <thread>

#include "models.hpp"
#include "test_util.hpp"

namespace fs = std::filesystem;
using namespace test_util;
using tg::Array;
using tg::Tensor;

namespace {

const std::string kSmallMnist = TG_FIXTURE_DIR "/mnist_small";

}  // namespace

TEST_CASE("detect_anomaly names the op, its layer and tape position of the first NaN or Inf") {
  tg::clear_tape();
  tg::set_detect_anomaly(true);
  Tensor x(Array{1.f, -1.f}, true);
  CHECK_THROWS_WITH_AS(tg::log(x), doctest::Contains("the output of 'log' (tape entry #0) has"),
                       tg::Error);
  tg::Sequential model(tg::Linear(2, 2), tg::ReLU());
  model.at<tg::Linear>(0).weight.value()(0, 0) = std::numeric_limits<float>::infinity();
  CHECK_THROWS_WITH_AS(model(Tensor(Array{{1.f, 1.f}})), doctest::Contains("'linear' in layer 0.Linear"), tg::Error);
  // a backward that produces NaN
  Tensor y = tg::make_op("bad_backward", x.value(), {x}, [](const Array& dout) {
    return std::vector<Array>{Array(dout * std::numeric_limits<float>::quiet_NaN())};
  });
  CHECK_THROWS_WITH_AS(tg::sum(y).backward(), doctest::Contains("the backward of 'bad_backward'"), tg::Error);
  tg::set_detect_anomaly(false);
  tg::clear_tape();
  CHECK_NOTHROW(tg::log(x));  // off again: values are not errors
}

TEST_CASE("train_mnist stops with a clear message when training diverges, naming the op with --detect-anomaly") {
  TempDir dir;
  const auto [code, output] = run(std::string(TG_TRAIN_BIN) + " --data " + kSmallMnist +
                                  " --lr 1000 --epochs 1 --detect-anomaly --out " + dir.path.string());
  INFO(output);
  CHECK(code == 1);
  CHECK(output.find("detect_anomaly:") != std::string::npos);
  CHECK(output.find("in layer") != std::string::npos);
}

TEST_CASE("load_image rejects what is not a usable image, with a message naming the file") {
  TempDir dir;
  std::ofstream(dir.file("text.png")) << "this is not a picture";
  CHECK_THROWS_WITH_AS(tg::load_image(dir.file("text.png"), 28, 28), doctest::Contains("text.png: not a readable image"),
                       tg::Error);
  write_bytes(dir.file("empty.png"), {});
  CHECK_THROWS_WITH_AS(tg::load_image(dir.file("empty.png"), 28, 28), doctest::Contains("empty file"), tg::Error);
  CHECK_THROWS_WITH_AS(tg::load_image(dir.file("missing.png"), 28, 28), doctest::Contains("file not found"), tg::Error);
  // a PNG header announcing 20000 x 20000 pixels: refused before any pixel memory is allocated
  std::vector<std::uint8_t> huge = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R',
                                    0, 0, 0x4e, 0x20, 0, 0, 0x4e, 0x20, 8, 0, 0, 0, 0, 0, 0, 0, 0};
  write_bytes(dir.file("huge.png"), huge);
  CHECK_THROWS_WITH_AS(tg::load_image(dir.file("huge.png"), 28, 28),
                       doctest::Contains("20000x20000, larger than 16384 pixels a side"), tg::Error);
  huge[17] = 0x01;  // 100000 x 100000: stb_image itself refuses it
  huge[18] = 0x86, huge[19] = 0xa0, huge[21] = 0x01, huge[22] = 0x86, huge[23] = 0xa0;
  write_bytes(dir.file("huger.png"), huge);
  CHECK_THROWS_WITH_AS(tg::load_image(dir.file("huger.png"), 28, 28), doctest::Contains("huger.png: not a readable"),
                       tg::Error);
  // a real PNG with its pixel data cut off, and one with garbled pixel data
  std::vector<std::uint8_t> pixels(64 * 64);
  for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<std::uint8_t>(i * 7);
  tg::write_png(dir.file("good.png"), pixels, 64, 64);
  std::vector<std::uint8_t> png;
  {
    const std::string s = read_text(dir.file("good.png"));
    png.assign(s.begin(), s.end());
  }
  CHECK(tg::load_image(dir.file("good.png"), 28, 28).shape() == tg::Shape{1, 1, 28, 28});
  write_bytes(dir.file("cut.png"), std::vector<std::uint8_t>(png.begin(), png.begin() + 60));
  CHECK_THROWS_WITH_AS(tg::load_image(dir.file("cut.png"), 28, 28), doctest::Contains("cut.png"), tg::Error);
  std::vector<std::uint8_t> garbled = png;
  for (std::size_t i = 41; i + 12 < garbled.size(); ++i) garbled[i] ^= 0xA5;
  write_bytes(dir.file("garbled.png"), garbled);
  CHECK_THROWS_WITH_AS(tg::load_image(dir.file("garbled.png"), 28, 28), doctest::Contains("garbled.png"), tg::Error);
}

TEST_CASE("a tiny PNG whose image data would make stb_image allocate gigabytes is refused (fuzzer finding)") {
  // an 8x6 PNG whose IDAT holds another PNG instead of a zlib stream (tests/fuzz/corpus/image/regression_*)
  const std::vector<std::uint8_t> bytes = {137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 8, 0, 0, 0, 6, 8, 6, 0, 0, 0, 254, 5, 223, 251, 0, 0, 0, 44, 73, 68, 65, 84, 120, 218, 137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 28, 0, 0, 0, 28, 8, 0, 0, 0, 0, 87, 102, 128, 72, 0, 0, 99, 96, 96, 96, 248, 127, 34, 197, 168, 126, 23, 102, 0, 0, 23, 73, 68, 65, 84, 120, 218, 99, 96, 24, 96, 240, 31, 8, 70, 37, 71, 37, 41, 145, 164, 19, 0, 0, 107, 174, 79, 177, 156, 129, 19, 120, 20, 49, 192, 25, 56, 20, 49, 160, 112, 176, 40, 98, 192, 16, 64, 83, 196, 128, 213, 88, 36, 69, 0, 158, 11, 84, 103, 96, 91, 153, 94, 186, 0, 0, 0, 0, 73, 69, 78, 68, 174, 66, 96, 130, 235, 0, 0, 0, 0, 49, 73, 69, 78, 68, 174, 66, 96, 130};
  CHECK_THROWS_WITH_AS(tg::load_image_from_memory(bytes, 28, 28, {}, "bomb.png"),
                       doctest::Contains("bomb.png: truncated PNG"), tg::Error);
}

TEST_CASE("load_image makes any polarity MNIST-style: light digits on dark") {
  TempDir dir;
  std::vector<std::uint8_t> paper(28 * 28, 250);  // dark ink on white paper
  for (std::size_t y = 8; y < 20; ++y) paper[y * 28 + 14] = 10;
  tg::write_png(dir.file("paper.png"), paper, 28, 28);
  const Array x = tg::load_image(dir.file("paper.png"), 28, 28, {.normalize = false});
  CHECK(x(0, 0, 0, 0) < 0.1f);    // background became dark
  CHECK(x(0, 0, 10, 14) > 0.7f);  // ink became light
  const Array kept = tg::load_image(dir.file("paper.png"), 28, 28, {.invert = tg::Invert::Never, .normalize = false});
  CHECK(kept(0, 0, 0, 0) > 0.9f);
}

TEST_CASE("same seed and thread count: two training runs write bit-identical checkpoints") {
  TempDir dir;
  for (int threads : {1, 2}) {
    const std::string cmd = std::string(TG_TRAIN_BIN) + " --data " + kSmallMnist + " --limit 640 --epochs 1 --seed 9" +
                            " --threads " + std::to_string(threads) + " --out ";
    REQUIRE(run(cmd + dir.file("a")).code == 0);
    REQUIRE(run(cmd + dir.file("b")).code == 0);
    INFO("threads ", threads);
    CHECK(read_text(dir.file("a/model.safetensors")) == read_text(dir.file("b/model.safetensors")));
  }
}

TEST_CASE("the tape is per thread: two threads training two models at once match one after the other") {
  tg::MNIST data(kSmallMnist, tg::Split::Train);
  data.keep_first(256);
  auto train = [&data](tg::Sequential& model) {
    tg::SGD opt(model.parameters(), {.lr = 0.05f, .momentum = 0.9f});
    tg::DataLoader loader(data, {.batch_size = 32, .shuffle = true, .seed = 3});
    for (const tg::Batch& batch : loader) {
      tg::Tensor loss = tg::cross_entropy(model(batch.images), batch.labels);
      opt.zero_grad();
      loss.backward();
      opt.step();
    }
  };
  auto make = [](std::uint64_t seed) {
    tg::manual_seed(seed);
    return tg::apps::make_model("lenet");
  };
  tg::Sequential a1 = make(1), b1 = make(2), a2 = make(1), b2 = make(2);
  train(a1);
  train(b1);
  std::thread ta([&] { train(a2); });
  std::thread tb([&] { train(b2); });
  ta.join();
  tb.join();
  const auto p1 = a1.parameters(), p2 = a2.parameters(), q1 = b1.parameters(), q2 = b2.parameters();
  for (std::size_t i = 0; i < p1.size(); ++i) {
    CHECK(p1[i].value() == p2[i].value());
    CHECK(q1[i].value() == q2[i].value());
  }
  CHECK(p1[0].value() != q1[0].value());
}
