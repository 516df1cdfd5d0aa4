// Data augmentation for training batches (`tapegrad train --augment flip,crop=4,erase`): a random horizontal
// flip and a random crop after zero-padding, as torchvision's RandomCrop(size, padding=P) followed by
// RandomHorizontalFlip() on the uint8 image, before normalization (a padded pixel is a black pixel,
// normalized like any other); then random erasing (Zhong et al. 2017), as torchvision's RandomErasing() after
// Normalize: with probability p a rectangle of 2% to 33% of the image, aspect ratio 0.3 to 3.3, set to 0
// (the mean of the data). DataLoader draws one choice per example from a generator seeded by the
// example's place in the epoch, so batches do not depend on threads, ranks or resuming.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/runtime/random.hpp"

namespace tg {

struct Augmentation {
  bool flip = false;             // mirror left-right with probability 1/2
  std::size_t crop_padding = 0;  // P > 0: pad by P zero pixels on every side, crop back at a random offset
  double erase = 0;              // the probability of erasing a rectangle (0: never)
  bool none() const { return !flip && crop_padding == 0 && erase == 0; }
  std::string text() const;  // "flip,crop=4,erase=0.5", "crop=2", "none": what parse_augmentation reads back
  bool operator==(const Augmentation&) const = default;
};

inline constexpr std::size_t kMaxCropPadding = 64;

// "" or "none": no augmentation; else a comma-separated list of `flip`, `crop=N` (N in 1..64) and `erase`
// (p = 0.5) or `erase=P` (P in (0, 1]). tg::Error naming the item that is none of these.
Augmentation parse_augmentation(const std::string& text);

// One example's random choice: the crop's top-left corner in the padded image (each in [0, 2P]; P, P is the
// original), whether to mirror the crop, and the rectangle to erase in the result (rows [ey, ey + eh),
// columns [ex, ex + ew); eh = 0: none).
struct AugmentChoice {
  std::size_t dy = 0, dx = 0;
  bool flip = false;
  std::size_t ey = 0, ex = 0, eh = 0, ew = 0;
};
// For an image of rows x cols (the erased rectangle fits in it).
AugmentChoice draw_augmentation(const Augmentation& augment, Generator& gen, std::size_t rows,
                                std::size_t cols);

// Writes out[c, y, x] = pixels[c, sy, sx] * scale[c] + offset[c], where (sy, sx) = (y + dy - P, x' + dx - P)
// with x' = cols - 1 - x when flipped, else x; a pixel outside the image is 0 (out = offset[c]); then
// out = 0 in the choice's erased rectangle, in every channel.
// pixels and out are [channels, rows, cols]; scale and offset hold one value per channel.
void augment_normalized(const std::uint8_t* pixels, std::size_t channels, std::size_t rows, std::size_t cols,
                        const float* scale, const float* offset, std::size_t padding,
                        const AugmentChoice& choice, float* out);

}  // namespace tg
