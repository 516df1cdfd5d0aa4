// Small folders of PNG images by class, written by the tests (tests/data/test_image_folder.cpp,
// tests/apps/test_cli_folder.cpp): every pixel a function of the image's number, kept in its file name
// ("img_<id>.png"), so that what a reader returns can be checked byte for byte.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "tapegrad.hpp"

namespace test_util {

// Byte k of image `id`, planar [channels, h, w] (channel c's plane is rotated by c, so RGB images differ
// from gray ones). Classes are told apart by the image's mean brightness: class c's images are around 40 + 30
// c.
inline std::uint8_t folder_byte(std::size_t id, std::size_t k, int label = 0) {
  return static_cast<std::uint8_t>(40 + 30 * label + (id * 7 + k * 13) % 23);
}

// Writes path as a h x w PNG of `channels` (1 or 3) from folder_byte.
inline void write_folder_png(const std::string& path, std::size_t id, std::size_t h, std::size_t w,
                             std::size_t channels, int label) {
  std::vector<std::uint8_t> interleaved(h * w * channels);
  for (std::size_t c = 0; c < channels; ++c)
    for (std::size_t i = 0; i < h * w; ++i)
      interleaved[i * channels + c] = folder_byte(id, c * h * w + i, label);
  tg::write_png(path, interleaved, w, h, channels);
}

// root/<classes[c]>/img_<id>.png, `per_class` images each (ids from first_id, class by class).
inline void write_image_folder(const std::filesystem::path& root, const std::vector<std::string>& classes,
                               std::size_t per_class, std::size_t h = 8, std::size_t w = 8,
                               std::size_t channels = 1, std::size_t first_id = 0) {
  std::size_t id = first_id;
  for (std::size_t c = 0; c < classes.size(); ++c) {
    std::filesystem::create_directories(root / classes[c]);
    for (std::size_t i = 0; i < per_class; ++i, ++id) {
      write_folder_png((root / classes[c] / ("img_" + std::to_string(id) + ".png")).string(), id, h, w,
                       channels, static_cast<int>(c));
    }
  }
}

// The id in ".../img_<id>.png".
inline std::size_t folder_image_id(const std::string& path) {
  const std::string name = std::filesystem::path(path).stem().string();
  return std::stoul(name.substr(name.find('_') + 1));
}

}  // namespace test_util
