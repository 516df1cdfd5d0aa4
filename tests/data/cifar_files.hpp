// CIFAR-10 binary batches made by the tests (tests/data/, tests/apps/): records from a fixed generator.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace test_util {

// Record `index`'s label (0..9) and byte k of its 3072 (1024 R, 1024 G, 1024 B): a fixed function of both,
// different in each channel, so that the tests can recompute any byte.
inline std::uint8_t cifar_label(std::size_t index) { return static_cast<std::uint8_t>((index * 7 + 3) % 10); }
inline std::uint8_t cifar_byte(std::size_t index, std::size_t k) {
  const std::size_t channel = k / 1024;
  return static_cast<std::uint8_t>((index * 31 + k * (channel + 1) * 13 + channel * 90 + (k * k) % 7) % 256);
}

// The bytes of records first .. first + count - 1.
inline std::vector<std::uint8_t> cifar_batch(std::size_t first, std::size_t count) {
  std::vector<std::uint8_t> out;
  for (std::size_t i = first; i < first + count; ++i) {
    out.push_back(cifar_label(i));
    for (std::size_t k = 0; k < 3072; ++k) out.push_back(cifar_byte(i, k));
  }
  return out;
}

// A small CIFAR-10 folder: 50 training records (data_batch_1.bin with records 0..29, data_batch_2.bin with
// 30..49) and 20 test records (test_batch.bin: 50..69); batches.meta.txt with `names` unless empty.
inline void write_small_cifar(const TempDir& dir, const std::vector<std::string>& names = {}) {
  write_bytes(dir.file("data_batch_1.bin"), cifar_batch(0, 30));
  write_bytes(dir.file("data_batch_2.bin"), cifar_batch(30, 20));
  write_bytes(dir.file("test_batch.bin"), cifar_batch(50, 20));
  if (names.empty()) return;
  std::string text;
  for (const std::string& name : names) text += name + "\n";
  write_text(dir.file("batches.meta.txt"), text);
}

}  // namespace test_util
