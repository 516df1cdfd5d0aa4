// What DataLoader and the command line need from a data set of labelled images (MNIST, CIFAR-10): the size,
// the per-example shape [C, rows, cols], the raw bytes, and the normalized floats.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace tg {

enum class Split { Train, Test };

class ImageDataset {
 public:
  virtual ~ImageDataset() = default;

  virtual std::size_t size() const = 0;
  virtual std::size_t channels() const = 0;
  virtual std::size_t rows() const = 0;
  virtual std::size_t cols() const = 0;
  virtual int label(std::size_t i) const = 0;
  // Example i's bytes, [channels, rows, cols] row-major.
  virtual const std::uint8_t* pixels(std::size_t i) const = 0;
  // Writes example i into out[channels * rows * cols] as (x / 255 - mean[c]) / std[c].
  virtual void normalized(std::size_t i, float* out) const = 0;
  // The normalization normalized() applies: one mean and one std per channel.
  virtual std::vector<float> channel_mean() const = 0;
  virtual std::vector<float> channel_std() const = 0;
  // Keeps the first n examples only (for quick runs and tests).
  virtual void keep_first(std::size_t n) = 0;

  std::size_t example_size() const { return channels() * rows() * cols(); }

 protected:
  ImageDataset() = default;
  ImageDataset(const ImageDataset&) = default;
  ImageDataset& operator=(const ImageDataset&) = default;
};

// The arithmetic of normalized(): out[c, k] = pixels[c, k] / 255 normalized by mean[c] and std[c], for
// `channels` planes of `plane` bytes, as pixel * (1 / (255 std)) - mean / std.
inline void normalize_planes(const std::uint8_t* pixels, std::size_t channels, std::size_t plane,
                             const float* mean, const float* std, float* out) {
  for (std::size_t c = 0; c < channels; ++c) {
    const float scale = 1.f / (255.f * std[c]), shift = mean[c] / std[c];
    for (std::size_t k = 0; k < plane; ++k)
      out[c * plane + k] = static_cast<float>(pixels[c * plane + k]) * scale - shift;
  }
}

}  // namespace tg
