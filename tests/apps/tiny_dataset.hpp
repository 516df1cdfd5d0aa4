// A labelled image set held in memory, for the tests of what the command line computes and draws from a test
// set (tests/apps/test_cli_evaluation.cpp, test_cli_pictures.cpp).
#pragma once

#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "tapegrad.hpp"

namespace test_util {

// A test set in memory: `pixels` holds every image's bytes, planar [channels, rows, cols], one after another;
// normalized() is pixel / 255.
class TinySet final : public tg::ImageDataset {
 public:
  TinySet(std::size_t channels, std::size_t rows, std::size_t cols, std::vector<std::uint8_t> pixels,
          std::vector<int> labels)
      : channels_(channels),
        rows_(rows),
        cols_(cols),
        pixels_(std::move(pixels)),
        labels_(std::move(labels)) {
    REQUIRE(pixels_.size() == labels_.size() * example_size());
  }
  std::size_t size() const override { return labels_.size(); }
  std::size_t channels() const override { return channels_; }
  std::size_t rows() const override { return rows_; }
  std::size_t cols() const override { return cols_; }
  int label(std::size_t i) const override { return labels_.at(i); }
  const std::uint8_t* pixels(std::size_t i) const override { return pixels_.data() + i * example_size(); }
  void normalized(std::size_t i, float* out) const override {
    const std::vector<float> mean(channels_, 0.f), std(channels_, 1.f);
    tg::normalize_planes(pixels(i), channels_, rows_ * cols_, mean.data(), std.data(), out);
  }
  std::vector<float> channel_mean() const override { return std::vector<float>(channels_, 0.f); }
  std::vector<float> channel_std() const override { return std::vector<float>(channels_, 1.f); }
  void keep_first(std::size_t) override {}

 private:
  std::size_t channels_, rows_, cols_;
  std::vector<std::uint8_t> pixels_;
  std::vector<int> labels_;
};

}  // namespace test_util
