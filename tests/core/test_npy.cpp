// .npy files (core/io): dump_npy writes what numpy.load reads.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "tapegrad.hpp"
#include "test_util.hpp"

namespace fs = std::filesystem;
using namespace test_util;
using tg::Array;
using tg::Tensor;

TEST_CASE("dump_npy writes a numpy .npy file") {
  TempDir dir;
  const Array a = {{1.f, 2.f, 3.f}, {4.f, 5.f, 6.f}};
  tg::dump_npy(a, dir.file("a.npy"));
  std::ifstream in(dir.file("a.npy"), std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(bytes.substr(0, 6) == "\x93NUMPY");
  const std::size_t header_len =
      static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
  CHECK((10 + header_len) % 64 == 0);
  CHECK(bytes.find("'shape': (2, 3)") != std::string::npos);
  REQUIRE(bytes.size() == 10 + header_len + 6 * sizeof(float));
  float last = 0.f;
  std::memcpy(&last, bytes.data() + bytes.size() - 4, 4);
  CHECK(last == 6.f);
  tg::dump_npy(Array{7.f, 8.f}, dir.file("b.npy"));
  std::ifstream in_b(dir.file("b.npy"), std::ios::binary);
  const std::string bytes_b((std::istreambuf_iterator<char>(in_b)), std::istreambuf_iterator<char>());
  CHECK(bytes_b.find("'shape': (2,)") != std::string::npos);
}
