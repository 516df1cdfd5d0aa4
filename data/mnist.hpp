// MNIST and Fashion-MNIST (same IDX format): images kept as bytes, normalized when batched.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/xt.hpp"
#include "data/dataset.hpp"

namespace tg {

// MNIST's pixel mean and standard deviation (pixels scaled to [0, 1]): the normalization of batches and,
// by default, of images given to a model (ImageOptions).
inline constexpr float kMnistMean = 0.1307f;
inline constexpr float kMnistStd = 0.3081f;

struct MNISTOptions {
  float mean = kMnistMean;  // of pixels scaled to [0, 1]; MNIST's by default
  float std = kMnistStd;
  static MNISTOptions mnist() { return {}; }
  static MNISTOptions fashion() { return {0.2860f, 0.3530f}; }
};

class MNIST : public ImageDataset {
 public:
  // Reads {train,t10k}-{images-idx3,labels-idx1}-ubyte from `dir`, raw or with .gz. Throws tg::Error
  // naming the file (and how to get the data set) when a file is missing, corrupt or inconsistent.
  MNIST(const std::string& dir, Split split, MNISTOptions options = {});

  std::size_t size() const override { return labels_.size(); }
  std::size_t channels() const override { return 1; }
  std::size_t rows() const override { return rows_; }
  std::size_t cols() const override { return cols_; }
  int label(std::size_t i) const override { return labels_.at(i); }
  const std::uint8_t* pixels(std::size_t i) const override { return images_.data() + i * rows_ * cols_; }
  const MNISTOptions& options() const { return options_; }
  std::vector<float> channel_mean() const override { return {options_.mean}; }
  std::vector<float> channel_std() const override { return {options_.std}; }

  // Writes image i, normalized ((x / 255 - mean) / std), into out[rows * cols].
  void normalized(std::size_t i, float* out) const override;
  // Keeps the first n examples only (for quick runs and tests).
  void keep_first(std::size_t n) override;

 private:
  std::vector<std::uint8_t> images_;  // [N, rows, cols]
  std::vector<int> labels_;           // [N], each in 0..9
  std::size_t rows_ = 0, cols_ = 0;
  MNISTOptions options_;
};

// [1, rows, cols] of the images of `split` in `dir` from the images file's IDX header alone (16 bytes; of a
// .gz file, only those are decompressed), so that a caller can check a model against the data before the
// images are read. Empty when the file is missing or its header is not that of MNIST images (the constructor
// then says why).
std::optional<std::array<std::size_t, 3>> mnist_image_shape(const std::string& dir, Split split);

// Where the data set's files are expected, for messages: which names were tried and how to get them.
std::string mnist_help(const std::string& dir);

}  // namespace tg
