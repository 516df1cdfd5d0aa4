#include "data/augment.hpp"

#include <algorithm>
#include <charconv>
#include <cstddef>

#include "core/base/error.hpp"

namespace tg {

std::string Augmentation::text() const {
  if (none()) return "none";
  std::string s = flip ? "flip" : "";
  if (crop_padding > 0) s += (s.empty() ? "crop=" : ",crop=") + std::to_string(crop_padding);
  return s;
}

Augmentation parse_augmentation(const std::string& text) {
  Augmentation a;
  if (text.empty() || text == "none") return a;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t end = std::min(text.find(',', start), text.size());
    const std::string item = text.substr(start, end - start);
    start = end + 1;
    if (item == "flip") {
      if (a.flip) fail("--augment: 'flip' is given twice in '", text, "'");
      a.flip = true;
      continue;
    }
    if (item.starts_with("crop=")) {
      const char *first = item.data() + 5, *last = item.data() + item.size();
      std::size_t n = 0;
      const auto [ptr, ec] = std::from_chars(first, last, n);
      if (a.crop_padding > 0) fail("--augment: crop is given twice in '", text, "'");
      if (ec == std::errc() && ptr == last && n >= 1 && n <= kMaxCropPadding) {
        a.crop_padding = n;
        continue;
      }
      fail("--augment: '", item, "': the crop's padding must be a whole number from 1 to ", kMaxCropPadding,
           " (pixels on each side), e.g. crop=4");
    }
    fail("--augment: ", item.empty() ? "an empty item" : "unknown '" + item + "'",
         "; expected a comma-separated list of flip, crop=N (e.g. flip,crop=4), or none; got '", text, "'");
  }
  return a;
}

AugmentChoice draw_augmentation(const Augmentation& augment, Generator& gen) {
  AugmentChoice c{.dy = augment.crop_padding, .dx = augment.crop_padding};
  if (augment.crop_padding > 0) {
    c.dy = gen.below(2 * augment.crop_padding + 1);
    c.dx = gen.below(2 * augment.crop_padding + 1);
  }
  if (augment.flip) c.flip = gen.below(2) == 1;
  return c;
}

void augment_normalized(const std::uint8_t* pixels, std::size_t channels, std::size_t rows, std::size_t cols,
                        const float* scale, const float* offset, std::size_t padding,
                        const AugmentChoice& choice, float* out) {
  using Index = std::ptrdiff_t;
  const Index h = static_cast<Index>(rows), w = static_cast<Index>(cols), p = static_cast<Index>(padding);
  const Index shift_y = static_cast<Index>(choice.dy) - p, shift_x = static_cast<Index>(choice.dx) - p;
  // Output columns [x0, x1) read the image: unflipped sx = x + shift_x, flipped sx = w - 1 - x + shift_x.
  const Index x0 = std::clamp(choice.flip ? shift_x : -shift_x, Index{0}, w);
  const Index x1 = std::clamp(choice.flip ? w + shift_x : w - shift_x, x0, w);
  for (std::size_t c = 0; c < channels; ++c) {
    const float s = scale[c], zero = offset[c];
    for (Index y = 0; y < h; ++y) {
      float* row = out + (static_cast<Index>(c) * h + y) * w;
      const Index sy = y + shift_y;
      if (sy < 0 || sy >= h) {
        std::fill(row, row + w, zero);
        continue;
      }
      const std::uint8_t* src = pixels + (static_cast<Index>(c) * h + sy) * w;
      std::fill(row, row + x0, zero);
      if (choice.flip) {
        const Index mirror = w - 1 + shift_x;
        for (Index x = x0; x < x1; ++x) row[x] = static_cast<float>(src[mirror - x]) * s + zero;
      } else {
        for (Index x = x0; x < x1; ++x) row[x] = static_cast<float>(src[x + shift_x]) * s + zero;
      }
      std::fill(row + x1, row + w, zero);
    }
  }
}

}  // namespace tg
