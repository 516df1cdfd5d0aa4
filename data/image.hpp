// Images in and out: load a PNG/JPEG/BMP (stb_image) as a model input, write grayscale PNGs
// (stb_image_write).
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
  Invert invert = Invert::Auto;
  bool normalize = true;  // (x / 255 - mean) / std, as MNIST batches; false: x / 255 in [0, 1]
  float mean = kMnistMean;
  float std = kMnistStd;
};

// Reads any channel count (gray, gray+alpha, RGB, RGBA; transparent pixels count as white paper), converts
// to grayscale, resizes to h x w and returns [1, 1, h, w]. Throws tg::Error naming the file for missing,
// unreadable, corrupt, empty or huge (over 16384 pixels a side or 16 megapixels) images.
Array load_image(const std::string& path, std::size_t h, std::size_t w, const ImageOptions& options = {});
// The same from the bytes of an image file; `name` is used in error messages.
Array load_image_from_memory(const std::vector<std::uint8_t>& bytes, std::size_t h, std::size_t w,
                             const ImageOptions& options = {}, const std::string& name = "image");

// Writes an 8-bit grayscale PNG (row-major pixels[height * width]) atomically.
void write_png(const std::string& path, const std::vector<std::uint8_t>& pixels, std::size_t width,
               std::size_t height);

}  // namespace tg
