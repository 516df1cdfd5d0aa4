// safetensors files (core/io/safetensors.hpp): every kind of bad file is a tg::Error naming the file and the
// problem.
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

namespace {

tg::Sequential small_model() { return tg::Sequential(tg::Linear(4, 3), tg::ReLU(), tg::Linear(3, 2)); }

// A safetensors file from a raw header string and data bytes.
void write_raw(const std::string& path, const std::string& header, std::size_t data_bytes) {
  std::ofstream out(path, std::ios::binary);
  const std::uint64_t n = header.size();
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << header;
  out << std::string(data_bytes, '\0');
}

}  // namespace

TEST_CASE("load rejects files that are not valid safetensors, naming the file and the problem") {
  TempDir dir;
  tg::Sequential model = small_model();
  const std::string path = dir.file("bad.safetensors");
  CHECK_THROWS_WITH_AS(tg::load(model, dir.file("missing.safetensors")), doctest::Contains("file not found"),
                       tg::Error);
  CHECK_THROWS_WITH_AS(tg::load(model, dir.path.string()), doctest::Contains("is a directory"), tg::Error);
  std::ofstream(path) << "hello";
  CHECK_THROWS_WITH_AS(tg::load(model, path), doctest::Contains("not a safetensors file"), tg::Error);
  std::ofstream(path) << "PNG\x89 this is some other file format entirely";
  CHECK_THROWS_WITH_AS(tg::load(model, path), doctest::Contains("header length"), tg::Error);
  write_raw(path, "{\"a\": {\"dtype\": \"F32\", ", 0);
  CHECK_THROWS_WITH_AS(tg::load(model, path), doctest::Contains("malformed safetensors header"), tg::Error);
  write_raw(path, R"({"0.weight": {"dtype": "F16", "shape": [3, 4], "data_offsets": [0, 24]}})", 24);
  CHECK_THROWS_WITH_AS(tg::load(model, path), doctest::Contains("dtype \"F16\", tapegrad reads F32 only"),
                       tg::Error);
  write_raw(path, R"({"0.weight": {"dtype": "F32", "shape": [3, 4], "data_offsets": [0, 48]}})", 20);
  CHECK_THROWS_WITH_AS(tg::load(model, path), doctest::Contains("outside the 20 data bytes"), tg::Error);
  write_raw(path, R"({"0.weight": {"dtype": "F32", "shape": [3, 4], "data_offsets": [0, 40]}})", 48);
  CHECK_THROWS_WITH_AS(tg::load(model, path), doctest::Contains("needs 48 bytes"), tg::Error);
  write_raw(
      path,
      R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}, "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}})",
      24);
  CHECK_THROWS_WITH_AS(tg::load(model, path), doctest::Contains("overlap"), tg::Error);
  write_raw(path, R"({"a": {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}})", 16);
  CHECK_THROWS_WITH_AS(tg::load(model, path), doctest::Contains("not all sizes"), tg::Error);
  // no elements (a 0 size), but sizes whose product would overflow xtensor's signed strides
  write_raw(path, R"({"a": {"dtype": "F32", "shape": [0, 4294967296, 4294967296], "data_offsets": [0, 0]}})",
            0);
  CHECK_THROWS_WITH_AS(tg::load(model, path), doctest::Contains("[0,4294967296,4294967296] overflows"),
                       tg::Error);
  write_raw(path, R"([1, 2, 3])", 0);
  CHECK_THROWS_WITH_AS(tg::load(model, path), doctest::Contains("not a JSON object"), tg::Error);
  // header length far beyond the file
  std::ofstream out(path, std::ios::binary);
  const std::uint64_t huge = 1ull << 40;
  out.write(reinterpret_cast<const char*>(&huge), 8);
  out << "{}";
  out.close();
  CHECK_THROWS_WITH_AS(tg::load(model, path), doctest::Contains("header length 1099511627776"), tg::Error);
}
