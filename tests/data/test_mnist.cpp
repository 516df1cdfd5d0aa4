// The MNIST data set (data/mnist.hpp): raw or gzipped files, normalization, and errors that say what is
// wrong.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <vector>

#include "data/idx_files.hpp"
#include "tapegrad.hpp"
#include "test_util.hpp"

namespace fs = std::filesystem;
using namespace test_util;

TEST_CASE("MNIST reads raw or gzipped files and normalizes pixels") {
  for (bool gz : {false, true}) {
    TempDir dir;
    write_tiny_mnist(dir, "train", 12, gz);
    tg::MNIST data(dir.path.string(), tg::Split::Train);
    CHECK(data.size() == 12);
    CHECK(data.rows() == 2);
    CHECK(data.cols() == 3);
    CHECK(data.label(11) == 1);
    float px[6];
    data.normalized(3, px);
    CHECK(px[0] == doctest::Approx((30.f / 255.f - 0.1307f) / 0.3081f));
  }
}

TEST_CASE("MNIST names the missing file and says how to get the data set") {
  TempDir dir;
  CHECK_THROWS_WITH_AS(tg::MNIST(dir.path.string(), tg::Split::Test),
                       doctest::Contains("t10k-images-idx3-ubyte (or .gz). Get MNIST with"), tg::Error);
}

TEST_CASE("MNIST rejects an image/label count mismatch and labels outside 0..9") {
  TempDir dir;
  write_bytes(dir.file("train-images-idx3-ubyte"), idx_bytes({3, 1, 1}, {1, 2, 3}));
  write_bytes(dir.file("train-labels-idx1-ubyte"), idx_bytes({2}, {1, 2}));
  CHECK_THROWS_WITH_AS(tg::MNIST(dir.path.string(), tg::Split::Train), doctest::Contains("has 3 images but"),
                       tg::Error);
  write_bytes(dir.file("train-labels-idx1-ubyte"), idx_bytes({3}, {1, 12, 2}));
  CHECK_THROWS_WITH_AS(tg::MNIST(dir.path.string(), tg::Split::Train),
                       doctest::Contains("label 1 is 12, expected 0..9"), tg::Error);
}
