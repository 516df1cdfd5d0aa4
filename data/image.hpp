// Images in and out (stb_image, stb_image_write): a PNG/JPEG/BMP file's header, its pixels decoded and
// resized to planar uint8 (the image-folder data sets), or loaded as a normalized model input [1, C, H, W]
// (gray or RGB); 8-bit PNGs written atomically, gray or RGB.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/xt.hpp"
#include "data/mnist.hpp"

namespace tg {

// MNIST digits are white (high values) on black. Photos and drawings are usually dark ink on light paper:
// Auto inverts an image whose border is mostly light, so either kind comes out MNIST-style.
enum class Invert { Auto, Never, Always };

struct ImageOptions {
  Invert invert = Invert::Auto;  // one channel only: a colour model takes images as they are
  bool normalize = true;    // (x / 255 - mean) / std, as the data set's batches; false: x / 255 in [0, 1]
  float mean = kMnistMean;  // one channel
  float std = kMnistStd;
  std::size_t channels = 1;                          // 1: grayscale, 3: RGB
  std::vector<float> channel_mean{}, channel_std{};  // 3 channels: R, G, B (both required when normalizing)
};

// Reads any channel count (gray, gray+alpha, RGB, RGBA; transparent pixels count as white paper), converts
// to options.channels (grayscale: the mean of R, G, B as stb_image weighs them; RGB from gray: the gray value
// thrice), resizes to h x w and returns [1, channels, h, w]. Throws tg::Error naming the file for missing,
// unreadable, corrupt, empty or huge (over 16384 pixels a side or 16 megapixels) images.
Array load_image(const std::string& path, std::size_t h, std::size_t w, const ImageOptions& options = {});
// The same from the bytes of an image file; `name` is used in error messages.
Array load_image_from_memory(const std::vector<std::uint8_t>& bytes, std::size_t h, std::size_t w,
                             const ImageOptions& options = {}, const std::string& name = "image");

// An image file's size and channel count (1 gray, 2 gray + alpha, 3 RGB, 4 RGBA) from its header, without
// decoding it. tg::Error naming the file when the bytes are empty, not a PNG/JPEG/BMP, or too large (over
// 16384 pixels a side or 16 megapixels).
struct ImageHeader {
  std::size_t rows = 0, cols = 0, channels = 0;
};
ImageHeader read_image_header(const std::vector<std::uint8_t>& bytes, const std::string& name);

// Decodes an image file's bytes into `channels` (1: gray, 3: RGB; transparent pixels over white) at h x w,
// planar uint8 [channels, h, w]: the pixels of load_image before normalization. An image already at h x w is
// not resampled. tg::Error naming the file as read_image_header, or when the data is corrupt or truncated.
std::vector<std::uint8_t> decode_image(const std::vector<std::uint8_t>& bytes, std::size_t h, std::size_t w,
                                       std::size_t channels, const std::string& name);

// Writes an 8-bit PNG atomically: grayscale (channels 1, row-major pixels[height * width]) or RGB (channels
// 3, interleaved pixels[height * width * 3]).
void write_png(const std::string& path, const std::vector<std::uint8_t>& pixels, std::size_t width,
               std::size_t height, std::size_t channels = 1);

}  // namespace tg
