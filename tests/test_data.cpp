// IDX reading (raw and gzip), its validation, the MNIST data set and the DataLoader, on files made here.
#include <doctest/doctest.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "tapegrad.hpp"
#include "test_util.hpp"

namespace fs = std::filesystem;
using namespace test_util;

namespace {

std::vector<std::uint8_t> idx_bytes(const std::vector<std::uint32_t>& dims, const std::vector<std::uint8_t>& data) {
  std::vector<std::uint8_t> out = {0, 0, 0x08, static_cast<std::uint8_t>(dims.size())};
  for (std::uint32_t d : dims) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(d >> shift));
  }
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

void write_gz(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
}

// n images of 2x3 where image i has every pixel = i * 10, labels i % 10
void write_tiny_mnist(const TempDir& dir, const std::string& prefix, std::uint32_t n, bool gz) {
  std::vector<std::uint8_t> pixels, labels;
  for (std::uint32_t i = 0; i < n; ++i) {
    for (int k = 0; k < 6; ++k) pixels.push_back(static_cast<std::uint8_t>(i * 10));
    labels.push_back(static_cast<std::uint8_t>(i % 10));
  }
  auto images = idx_bytes({n, 2, 3}, pixels);
  auto label_file = idx_bytes({n}, labels);
  if (gz) {
    write_gz(dir.file(prefix + "-images-idx3-ubyte.gz"), images);
    write_gz(dir.file(prefix + "-labels-idx1-ubyte.gz"), label_file);
  } else {
    write_bytes(dir.file(prefix + "-images-idx3-ubyte"), images);
    write_bytes(dir.file(prefix + "-labels-idx1-ubyte"), label_file);
  }
}

}  // namespace

TEST_CASE("read_idx reads a raw and a gzipped file to the same array") {
  TempDir dir;
  const auto bytes = idx_bytes({2, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8});
  write_bytes(dir.file("a-idx3-ubyte"), bytes);
  write_gz(dir.file("a-idx3-ubyte.gz"), bytes);
  const tg::IdxArray raw = tg::read_idx(dir.file("a-idx3-ubyte"));
  const tg::IdxArray gz = tg::read_idx(dir.file("a-idx3-ubyte.gz"));
  CHECK(raw.dims == std::vector<std::size_t>{2, 2, 2});
  CHECK(raw.data == std::vector<std::uint8_t>{1, 2, 3, 4, 5, 6, 7, 8});
  CHECK(gz.dims == raw.dims);
  CHECK(gz.data == raw.data);
}

TEST_CASE("read_idx rejects missing, empty, wrong-magic, truncated and oversized files, naming the file") {
  TempDir dir;
  const std::string path = dir.file("bad-idx1-ubyte");
  CHECK_THROWS_WITH_AS(tg::read_idx(path), doctest::Contains("bad-idx1-ubyte: file not found"), tg::Error);
  CHECK_THROWS_WITH_AS(tg::read_idx(dir.path.string()), doctest::Contains("is a directory"), tg::Error);
  write_bytes(path, {});
  CHECK_THROWS_WITH_AS(tg::read_idx(path), doctest::Contains("bad-idx1-ubyte: empty file"), tg::Error);
  write_bytes(path, {0x1f, 0x8b, 0x08, 0x01, 0, 0, 0, 1, 7});
  CHECK_THROWS_WITH_AS(tg::read_idx(path), doctest::Contains("not an IDX file"), tg::Error);
  write_bytes(path, {0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0});
  CHECK_THROWS_WITH_AS(tg::read_idx(path), doctest::Contains("0xd is not supported"), tg::Error);
  write_bytes(path, {0, 0, 0x08, 3, 0, 0});
  CHECK_THROWS_WITH_AS(tg::read_idx(path), doctest::Contains("truncated IDX header"), tg::Error);
  write_bytes(path, idx_bytes({10}, {1, 2, 3}));
  CHECK_THROWS_WITH_AS(tg::read_idx(path), doctest::Contains("truncated: the header [10] needs 10 bytes of data, the file has 3"),
                       tg::Error);
  write_bytes(path, idx_bytes({2}, {1, 2, 3}));
  CHECK_THROWS_WITH_AS(tg::read_idx(path), doctest::Contains("1 unexpected bytes"), tg::Error);
  write_bytes(path, idx_bytes({0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}, {}));
  CHECK_THROWS_WITH_AS(tg::read_idx(path), doctest::Contains("overflow"), tg::Error);
  write_bytes(path, {0, 0, 0x08, 0});
  CHECK_THROWS_WITH_AS(tg::read_idx(path), doctest::Contains("0 dimensions"), tg::Error);
}

TEST_CASE("read_idx reports a truncated or corrupt gzip stream") {
  TempDir dir;
  const auto bytes = idx_bytes({4096}, std::vector<std::uint8_t>(4096, 7));
  write_gz(dir.file("g.gz"), bytes);
  std::vector<std::uint8_t> gz = tg::read_file_bytes(dir.file("g.gz"), 1 << 20);
  CHECK(gz.size() == bytes.size());
  // cut the compressed file in half
  std::ifstream in(dir.file("g.gz"), std::ios::binary);
  std::vector<char> compressed((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  write_bytes(dir.file("cut.gz"), std::vector<std::uint8_t>(compressed.begin(), compressed.begin() + compressed.size() / 2));
  CHECK_THROWS_WITH_AS(tg::read_idx(dir.file("cut.gz")), doctest::Contains("cut.gz"), tg::Error);
  std::vector<std::uint8_t> garbled(compressed.begin(), compressed.end());
  for (std::size_t i = 12; i < garbled.size() - 8; ++i) garbled[i] ^= 0x5A;
  write_bytes(dir.file("garbled.gz"), garbled);
  CHECK_THROWS_WITH_AS(tg::read_idx(dir.file("garbled.gz")), doctest::Contains("garbled.gz"), tg::Error);
}

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

TEST_CASE("DataLoader covers every example once per epoch, in a seed-determined order") {
  TempDir dir;
  write_tiny_mnist(dir, "train", 10, false);
  tg::MNIST data(dir.path.string(), tg::Split::Train);
  tg::DataLoader a(data, {.batch_size = 4, .shuffle = true, .seed = 7});
  tg::DataLoader b(data, {.batch_size = 4, .shuffle = true, .seed = 7});
  CHECK(a.num_batches() == 3);
  std::vector<int> first_epoch;
  std::set<float> pixels_seen;
  std::size_t batches = 0;
  for (const tg::Batch& batch : a) {
    ++batches;
    CHECK(batch.images.shape()[1] == 1);
    CHECK(batch.images.shape()[2] == 2);
    for (std::size_t i = 0; i < batch.labels.size(); ++i) {
      first_epoch.push_back(batch.labels[i]);
      pixels_seen.insert(batch.images.value()(i, 0, 0, 0));
    }
  }
  CHECK(batches == 3);
  CHECK(pixels_seen.size() == 10);  // each of the 10 distinct images once
  std::vector<int> again;
  for (const tg::Batch& batch : b) again.insert(again.end(), batch.labels.begin(), batch.labels.end());
  CHECK(again == first_epoch);
  CHECK(a.order(0) != a.order(1));  // a new order each epoch
  CHECK(a.order(1) == b.order(1));
}

TEST_CASE("DataLoader drop_last and sequential order") {
  TempDir dir;
  write_tiny_mnist(dir, "train", 10, false);
  tg::MNIST data(dir.path.string(), tg::Split::Train);
  tg::DataLoader seq(data, {.batch_size = 4, .shuffle = false, .drop_last = true});
  CHECK(seq.num_batches() == 2);
  std::vector<int> labels;
  for (const tg::Batch& batch : seq) labels.insert(labels.end(), batch.labels.begin(), batch.labels.end());
  CHECK(labels == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7});
  CHECK_THROWS_AS(tg::DataLoader(data, {.batch_size = 0}), tg::Error);
}
