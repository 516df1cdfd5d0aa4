#include "data/augment.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdio>

#include "core/base/error.hpp"

namespace tg {

std::string Augmentation::text() const {
  if (none()) return "none";
  std::string s = flip ? "flip" : "";
  if (crop_padding > 0) s += (s.empty() ? "crop=" : ",crop=") + std::to_string(crop_padding);
  if (erase > 0) {
    char p[32];
    std::snprintf(p, sizeof p, "%g", erase);
    s += (s.empty() ? "erase=" : ",erase=") + std::string(p);
  }
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
    if (item == "erase" || item.starts_with("erase=")) {
      if (a.erase > 0) fail("--augment: erase is given twice in '", text, "'");
      double p = 0.5;
      const char *first = item.data() + 6, *last = item.data() + item.size();
      const auto [ptr, ec] =
          item == "erase" ? std::from_chars_result{last, std::errc()} : std::from_chars(first, last, p);
      if (ec == std::errc() && ptr == last && p > 0 && p <= 1) {
        a.erase = p;
        continue;
      }
      fail("--augment: '", item, "': the probability of erasing must be a number in (0, 1], e.g. erase=0.5");
    }
    fail("--augment: ", item.empty() ? "an empty item" : "unknown '" + item + "'",
         "; expected a comma-separated list of flip, crop=N, erase[=P] (e.g. flip,crop=4), or none; got '",
         text, "'");
  }
  return a;
}

AugmentChoice draw_augmentation(const Augmentation& augment, Generator& gen, std::size_t rows,
                                std::size_t cols) {
  AugmentChoice c{.dy = augment.crop_padding, .dx = augment.crop_padding};
  if (augment.crop_padding > 0) {
    c.dy = gen.below(2 * augment.crop_padding + 1);
    c.dx = gen.below(2 * augment.crop_padding + 1);
  }
  if (augment.flip) c.flip = gen.below(2) == 1;
  if (augment.erase > 0 && gen.uniform() < augment.erase) {
    // torchvision's RandomErasing(scale=(0.02, 0.33), ratio=(0.3, 3.3)): up to 10 tries for a rectangle
    // that fits, else none.
    const double area = static_cast<double>(rows) * static_cast<double>(cols);
    for (int attempt = 0; attempt < 10; ++attempt) {
      const double target = area * gen.uniform(0.02f, 0.33f);
      const double aspect = std::exp(gen.uniform(std::log(0.3f), std::log(3.3f)));
      const auto h = static_cast<std::size_t>(std::lround(std::sqrt(target * aspect)));
      const auto w = static_cast<std::size_t>(std::lround(std::sqrt(target / aspect)));
      if (h == 0 || w == 0 || h >= rows || w >= cols) continue;
      c.ey = gen.below(rows - h + 1);
      c.ex = gen.below(cols - w + 1);
      c.eh = h;
      c.ew = w;
      break;
    }
  }
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
    for (std::size_t y = choice.ey; y < choice.ey + choice.eh; ++y) {
      float* row = out + (c * rows + y) * cols;
      std::fill(row + choice.ex, row + choice.ex + choice.ew, 0.0f);
    }
  }
}

}  // namespace tg
