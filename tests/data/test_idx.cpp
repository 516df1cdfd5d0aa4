// IDX files (data/idx.hpp): raw and gzipped, and every kind of bad file named with its problem.
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
  CHECK_THROWS_WITH_AS(tg::read_idx(path),
                       doctest::Contains("truncated: the header [10] needs 10 bytes of data, the file has 3"),
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
  write_bytes(dir.file("cut.gz"),
              std::vector<std::uint8_t>(compressed.begin(), compressed.begin() + compressed.size() / 2));
  CHECK_THROWS_WITH_AS(tg::read_idx(dir.file("cut.gz")), doctest::Contains("cut.gz"), tg::Error);
  std::vector<std::uint8_t> garbled(compressed.begin(), compressed.end());
  for (std::size_t i = 12; i < garbled.size() - 8; ++i) garbled[i] ^= 0x5A;
  write_bytes(dir.file("garbled.gz"), garbled);
  CHECK_THROWS_WITH_AS(tg::read_idx(dir.file("garbled.gz")), doctest::Contains("garbled.gz"), tg::Error);
}
