// IDX and MNIST files made by the tests (tests/data/): raw and gzipped IDX bytes, and a tiny MNIST folder.
#pragma once

#include <doctest/doctest.h>
#include <zlib.h>

#include <cstdint>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace test_util {

inline std::vector<std::uint8_t> idx_bytes(const std::vector<std::uint32_t>& dims,
                                           const std::vector<std::uint8_t>& data) {
  std::vector<std::uint8_t> out = {0, 0, 0x08, static_cast<std::uint8_t>(dims.size())};
  for (std::uint32_t d : dims) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(d >> shift));
  }
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

inline void write_gz(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
}

// n images of 2x3 where image i has every pixel = i * 10, labels i % 10
inline void write_tiny_mnist(const TempDir& dir, const std::string& prefix, std::uint32_t n, bool gz) {
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

// n images of 1x1 where image i has pixel value i (so normalized values identify examples), labels i % 10.
inline void write_numbered_mnist(const TempDir& dir, std::uint32_t n) {
  std::vector<std::uint8_t> pixels, labels;
  for (std::uint32_t i = 0; i < n; ++i) {
    pixels.push_back(static_cast<std::uint8_t>(i));
    labels.push_back(static_cast<std::uint8_t>(i % 10));
  }
  write_bytes(dir.file("train-images-idx3-ubyte"), idx_bytes({n, 1, 1}, pixels));
  write_bytes(dir.file("train-labels-idx1-ubyte"), idx_bytes({n}, labels));
}

}  // namespace test_util
