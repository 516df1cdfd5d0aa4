// The CIFAR-10 data set, binary version (data/cifar10.hpp): records read back byte for byte, per-channel
// normalization from the training set, batches [B, 3, 32, 32], class names, and errors that name the file.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "data/cifar_files.hpp"
#include "tapegrad.hpp"
#include "test_util.hpp"

using namespace test_util;

namespace {

// The error a constructor throws, for checks on its text.
std::string error_of(const std::string& dir, tg::Split split) {
  try {
    tg::CIFAR10 data(dir, split);
  } catch (const tg::Error& e) {
    return e.what();
  }
  FAIL("CIFAR10(", dir, ") did not throw");
  return "";
}

}  // namespace

TEST_CASE("CIFAR10 reads back every byte written: the label byte, then the R, G and B planes") {
  TempDir dir;
  write_small_cifar(dir);
  const tg::CIFAR10 train(dir.path.string(), tg::Split::Train);
  const tg::CIFAR10 test(dir.path.string(), tg::Split::Test);
  REQUIRE(train.size() == 50);
  REQUIRE(test.size() == 20);
  CHECK(train.channels() == 3);
  CHECK(train.rows() == 32);
  CHECK(train.cols() == 32);
  CHECK(train.files() ==
        std::vector<std::string>{dir.file("data_batch_1.bin"), dir.file("data_batch_2.bin")});
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < 50; ++i) {
    CHECK(train.label(i) == cifar_label(i));
    for (std::size_t k = 0; k < 3072; ++k) wrong += train.pixels(i)[k] != cifar_byte(i, k);
  }
  for (std::size_t i = 0; i < 20; ++i) {
    CHECK(test.label(i) == cifar_label(50 + i));
    for (std::size_t k = 0; k < 3072; ++k) wrong += test.pixels(i)[k] != cifar_byte(50 + i, k);
  }
  CHECK(wrong == 0);
}

TEST_CASE("CIFAR10 normalizes each channel with the mean and std of the training set's pixels / 255") {
  TempDir dir;
  write_small_cifar(dir);
  // By hand: over the 50 training records, the 1024 bytes of each channel.
  double mean[3], stddev[3];
  for (std::size_t c = 0; c < 3; ++c) {
    double sum = 0, sum_sq = 0;
    for (std::size_t i = 0; i < 50; ++i) {
      for (std::size_t k = c * 1024; k < (c + 1) * 1024; ++k) {
        const double x = cifar_byte(i, k) / 255.0;
        sum += x;
        sum_sq += x * x;
      }
    }
    mean[c] = sum / (50 * 1024);
    stddev[c] = std::sqrt(sum_sq / (50 * 1024) - mean[c] * mean[c]);
  }
  const tg::CIFAR10 train(dir.path.string(), tg::Split::Train);
  REQUIRE(train.channel_mean().size() == 3);
  REQUIRE(train.channel_std().size() == 3);
  for (std::size_t c = 0; c < 3; ++c) {
    CHECK(train.channel_mean()[c] == doctest::Approx(mean[c]).epsilon(1e-6));
    CHECK(train.channel_std()[c] == doctest::Approx(stddev[c]).epsilon(1e-6));
  }
  CHECK(train.channel_mean()[0] != doctest::Approx(train.channel_mean()[1]));  // truly per channel

  // The test set takes the training set's normalization.
  const tg::CIFAR10 test(dir.path.string(), tg::Split::Test, train.channel_mean(), train.channel_std());
  std::vector<float> out(3072);
  test.normalized(7, out.data());
  for (std::size_t k : {0, 1023, 1024, 2047, 2048, 3071}) {
    const std::size_t c = k / 1024;
    CHECK(out[k] == doctest::Approx((cifar_byte(57, k) / 255.0 - mean[c]) / stddev[c]).epsilon(1e-5));
  }
  CHECK_THROWS_WITH_AS(tg::CIFAR10(dir.path.string(), tg::Split::Test, {0.5f}, {0.2f}),
                       doctest::Contains("3 means and 3 stds"), tg::Error);
  CHECK_THROWS_WITH_AS(tg::CIFAR10(dir.path.string(), tg::Split::Test, {0.5f, 0.5f, 0.5f}, {0.2f, 0.f, 0.2f}),
                       doctest::Contains("std must be > 0"), tg::Error);
}

TEST_CASE("DataLoader batches CIFAR-10 as [B, 3, 32, 32], each image normalized") {
  TempDir dir;
  write_small_cifar(dir);
  tg::CIFAR10 train(dir.path.string(), tg::Split::Train);
  tg::DataLoader loader(train, {.batch_size = 16, .shuffle = false});
  CHECK(loader.num_batches() == 4);
  std::vector<float> expected(3072);
  std::size_t index = 0;
  for (const tg::Batch& batch : loader) {
    const std::size_t b = batch.labels.size();
    CHECK(batch.images.shape() == tg::Shape{b, 3, 32, 32});
    for (std::size_t i = 0; i < b; ++i, ++index) {
      CHECK(batch.labels[i] == cifar_label(index));
      train.normalized(index, expected.data());
      const float* got = batch.images.value().data() + i * 3072;
      CHECK(std::equal(expected.begin(), expected.end(), got));
    }
  }
  CHECK(index == 50);
  train.keep_first(20);
  CHECK(train.size() == 20);
  CHECK(tg::DataLoader(train, {.batch_size = 16}).num_batches() == 2);
}

TEST_CASE("CIFAR-10's class names come from batches.meta.txt, else the standard ten") {
  TempDir standard;
  write_small_cifar(standard);
  CHECK(tg::cifar10_class_names(standard.path.string()) ==
        std::vector<std::string>{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                                 "ship", "truck"});
  // The real file ends in blank lines; Windows line ends and trailing spaces are dropped too.
  CHECK(tg::parse_cifar10_class_names("cat \r\ndog\r\n\n\n", "meta") ==
        std::vector<std::string>{"cat", "dog"});
  TempDir custom;
  const std::vector<std::string> names{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"};
  write_small_cifar(custom, names);
  CHECK(tg::CIFAR10(custom.path.string(), tg::Split::Test).class_names() == names);
}

TEST_CASE(
    "CIFAR10 rejects bad files with a tg::Error naming the file, what it expected and how to get the data") {
  SUBCASE("an empty batch file") {
    TempDir dir;
    write_small_cifar(dir);
    write_bytes(dir.file("test_batch.bin"), {});
    const std::string e = error_of(dir.path.string(), tg::Split::Test);
    CHECK(e.find(dir.file("test_batch.bin") + ": empty file; expected CIFAR-10 records of 3073 bytes") !=
          std::string::npos);
  }
  SUBCASE("a length that is not a multiple of 3073") {
    TempDir dir;
    write_small_cifar(dir);
    std::vector<std::uint8_t> bytes = cifar_batch(0, 2);
    bytes.resize(bytes.size() + 5);
    write_bytes(dir.file("data_batch_2.bin"), bytes);
    const std::string e = error_of(dir.path.string(), tg::Split::Train);
    CHECK(e.find(dir.file("data_batch_2.bin") +
                 ": 6151 bytes is not a whole number of CIFAR-10 records of 3073") != std::string::npos);
    CHECK(e.find("2 records and 5 bytes left over") != std::string::npos);
  }
  SUBCASE("a label byte above 9") {
    TempDir dir;
    write_small_cifar(dir);
    std::vector<std::uint8_t> bytes = cifar_batch(0, 3);
    bytes[2 * 3073] = 10;
    write_bytes(dir.file("test_batch.bin"), bytes);
    CHECK(error_of(dir.path.string(), tg::Split::Test)
              .find(dir.file("test_batch.bin") + ": record 2 has label 10, expected 0..9 (10 classes)") !=
          std::string::npos);
  }
  SUBCASE("a label byte beyond batches.meta.txt's names") {
    TempDir dir;
    write_small_cifar(dir, {"x", "y", "z"});
    CHECK(error_of(dir.path.string(), tg::Split::Train)
              .find(dir.file("data_batch_1.bin") + ": record 0 has label 3, expected 0..2 (3 classes)") !=
          std::string::npos);
  }
  SUBCASE("a batches.meta.txt without names") {
    TempDir dir;
    write_small_cifar(dir);
    write_bytes(dir.file("batches.meta.txt"), {'\n', ' ', '\n'});
    CHECK(error_of(dir.path.string(), tg::Split::Train)
              .find(dir.file("batches.meta.txt") + ": expected class names, one per line") !=
          std::string::npos);
  }
  SUBCASE("a missing test_batch.bin or data_batch_1.bin") {
    TempDir dir;
    for (tg::Split split : {tg::Split::Test, tg::Split::Train}) {
      const std::string e = error_of(dir.path.string(), split);
      const std::string file = split == tg::Split::Test ? "test_batch.bin" : "data_batch_1.bin";
      CHECK(e.find("cannot find " + dir.file(file)) != std::string::npos);
      CHECK(e.find("download cifar-10-binary.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html") !=
            std::string::npos);
    }
  }
  SUBCASE("training batches with a gap") {
    TempDir dir;
    write_small_cifar(dir);
    write_bytes(dir.file("data_batch_4.bin"), cifar_batch(0, 1));
    CHECK(error_of(dir.path.string(), tg::Split::Train)
              .find("found " + dir.file("data_batch_4.bin") + " but not data_batch_3.bin") !=
          std::string::npos);
  }
}

TEST_CASE("MNIST is an ImageDataset of one channel with its constant normalization") {
  TempDir dir;
  write_small_cifar(dir);  // a CIFAR folder has no IDX files: MNIST still says which one it misses
  CHECK_THROWS_WITH_AS(tg::MNIST(dir.path.string(), tg::Split::Train),
                       doctest::Contains("train-images-idx3-ubyte (or .gz)"), tg::Error);
  const tg::MNIST mnist(TG_FIXTURE_DIR "/mnist_small", tg::Split::Test);
  const tg::ImageDataset& data = mnist;
  CHECK(data.channels() == 1);
  CHECK(data.example_size() == 28 * 28);
  CHECK(data.channel_mean() == std::vector<float>{tg::kMnistMean});
  CHECK(data.channel_std() == std::vector<float>{tg::kMnistStd});
}
