// Augmentation (data/augment.hpp): the --augment grammar, the kernel against a plain pad-crop-flip, and what
// DataLoader's augmented batches hold (torchvision's RandomCrop(padding=P) + RandomHorizontalFlip on the
// bytes, then the normalization). Determinism over threads, ranks and resuming: test_dataloader.cpp.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "data/cifar_files.hpp"
#include "tapegrad.hpp"
#include "test_util.hpp"

using namespace test_util;

namespace {

// Example i of `data` with its pixels shifted by (sy, sx) (out[y, x] = in[y - sy, x - sx], 0 outside) and
// mirrored left-right when `mirror`, normalized: what a crop at offset (P - sy, P - sx) of the padded
// image, then maybe a flip, gives.
std::vector<float> expected(const tg::ImageDataset& data, std::size_t i, int sy, int sx, bool mirror) {
  const std::vector<float> mean = data.channel_mean(), std = data.channel_std();
  const int h = static_cast<int>(data.rows()), w = static_cast<int>(data.cols());
  const std::uint8_t* px = data.pixels(i);
  std::vector<float> out;
  for (std::size_t c = 0; c < data.channels(); ++c) {
    for (int y = 0; y < h; ++y) {
      for (int x = 0; x < w; ++x) {
        const int from_y = y - sy, from_x = (mirror ? w - 1 - x : x) - sx;
        const bool inside = from_y >= 0 && from_y < h && from_x >= 0 && from_x < w;
        const float byte = inside ? px[(c * h + from_y) * w + from_x] : 0.f;
        out.push_back((byte / 255.f - mean[c]) / std[c]);
      }
    }
  }
  return out;
}

bool close(const float* got, const std::vector<float>& want) {
  for (std::size_t k = 0; k < want.size(); ++k)
    if (std::abs(got[k] - want[k]) > 1e-5f) return false;
  return true;
}

// The (shift, mirror) among all shifts within [-P, P] that turns example i into `got`, or none.
struct Match {
  bool found = false;
  int sy = 0, sx = 0;
  bool mirror = false;
};
Match find_match(const tg::ImageDataset& data, std::size_t i, const float* got, int padding, bool flips) {
  for (int mirror = 0; mirror <= (flips ? 1 : 0); ++mirror)
    for (int sy = -padding; sy <= padding; ++sy)
      for (int sx = -padding; sx <= padding; ++sx)
        if (close(got, expected(data, i, sy, sx, mirror == 1))) return {true, sy, sx, mirror == 1};
  return {};
}

}  // namespace

TEST_CASE("parse_augmentation reads none, flip and crop=N in any order, and text() reads back") {
  CHECK(tg::parse_augmentation("").none());
  CHECK(tg::parse_augmentation("none").none());
  CHECK(tg::parse_augmentation("none").text() == "none");
  const tg::Augmentation both = tg::parse_augmentation("flip,crop=4");
  CHECK(both.flip);
  CHECK(both.crop_padding == 4);
  CHECK_FALSE(both.none());
  CHECK(both.text() == "flip,crop=4");
  CHECK(tg::parse_augmentation("crop=4,flip") == both);
  CHECK(tg::parse_augmentation("flip").text() == "flip");
  CHECK(tg::parse_augmentation("crop=64").text() == "crop=64");
  for (const char* text : {"none", "flip", "crop=1", "crop=2", "flip,crop=64"})
    CHECK(tg::parse_augmentation(tg::parse_augmentation(text).text()).text() == text);
}

TEST_CASE("parse_augmentation names a bad item and says what is accepted") {
  CHECK_THROWS_WITH_AS(
      tg::parse_augmentation("flip,rotate"),
      doctest::Contains("--augment: unknown 'rotate'; expected a comma-separated list of flip, crop=N"),
      tg::Error);
  for (const char* bad : {"crop=0", "crop=65", "crop=", "crop=x", "crop=4px", "crop=-1"}) {
    CAPTURE(bad);
    CHECK_THROWS_WITH_AS(tg::parse_augmentation(bad), doctest::Contains("from 1 to 64"), tg::Error);
  }
  for (const char* bad : {"Flip", "flip,", ",flip", "flip,,crop=2", "crop4", "none,flip"}) {
    CAPTURE(bad);
    CHECK_THROWS_WITH_AS(tg::parse_augmentation(bad), doctest::Contains("expected a comma-separated list"),
                         tg::Error);
  }
  CHECK_THROWS_WITH_AS(tg::parse_augmentation("flip,flip"), doctest::Contains("twice"), tg::Error);
  CHECK_THROWS_WITH_AS(tg::parse_augmentation("crop=2,crop=4"), doctest::Contains("twice"), tg::Error);
}

TEST_CASE("parse_augmentation reads erase (p = 0.5) and erase=P, and names a bad probability") {
  CHECK(tg::parse_augmentation("erase").erase == 0.5);
  CHECK(tg::parse_augmentation("flip,crop=4,erase=0.25").erase == 0.25);
  CHECK(tg::parse_augmentation("erase").text() == "erase=0.5");
  for (const char* text : {"erase=0.5", "flip,crop=4,erase=0.25", "erase=1"})
    CHECK(tg::parse_augmentation(tg::parse_augmentation(text).text()).text() == text);
  for (const char* bad : {"erase=0", "erase=1.5", "erase=-0.5", "erase=x", "erase=", "erase=0.5%"}) {
    CAPTURE(bad);
    CHECK_THROWS_WITH_AS(tg::parse_augmentation(bad), doctest::Contains("a number in (0, 1]"), tg::Error);
  }
  CHECK_THROWS_WITH_AS(tg::parse_augmentation("erase,erase=0.3"), doctest::Contains("twice"), tg::Error);
}

TEST_CASE("augment_normalized equals padding with zeros, cropping and mirroring, then normalizing") {
  // A 2x3x5 image (rows 3, cols 5: not square) with distinct bytes, every crop offset of padding 2 (and 4,
  // wider than the image), both flips.
  const std::size_t channels = 2, rows = 3, cols = 5;
  std::vector<std::uint8_t> image(channels * rows * cols);
  for (std::size_t k = 0; k < image.size(); ++k) image[k] = static_cast<std::uint8_t>(7 * k + 3);
  const float scale[] = {1.f / (255.f * 0.3f), 1.f / (255.f * 0.2f)}, offset[] = {-0.5f / 0.3f, -0.4f / 0.2f};
  for (std::size_t p : {2, 4}) {
    const std::size_t prows = rows + 2 * p, pcols = cols + 2 * p;
    for (std::size_t dy = 0; dy <= 2 * p; ++dy) {
      for (std::size_t dx = 0; dx <= 2 * p; ++dx) {
        for (bool flip : {false, true}) {
          CAPTURE(p);
          CAPTURE(dy);
          CAPTURE(dx);
          CAPTURE(flip);
          std::vector<float> got(image.size());
          tg::augment_normalized(image.data(), channels, rows, cols, scale, offset, p,
                                 {.dy = dy, .dx = dx, .flip = flip}, got.data());
          bool same = true;
          for (std::size_t c = 0; c < channels; ++c) {
            std::vector<std::uint8_t> padded(prows * pcols, 0);
            for (std::size_t y = 0; y < rows; ++y)
              for (std::size_t x = 0; x < cols; ++x)
                padded[(y + p) * pcols + x + p] = image[(c * rows + y) * cols + x];
            for (std::size_t y = 0; y < rows; ++y) {
              for (std::size_t x = 0; x < cols; ++x) {
                const std::size_t crop_x = flip ? cols - 1 - x : x;  // the flip mirrors the crop
                const float want =
                    static_cast<float>(padded[(y + dy) * pcols + crop_x + dx]) * scale[c] + offset[c];
                same = same && std::abs(got[(c * rows + y) * cols + x] - want) <= 1e-5f;
              }
            }
          }
          CHECK(same);
        }
      }
    }
  }
}

TEST_CASE("crop=P: each example is its image shifted by at most P pixels, with black (normalized) borders") {
  TempDir dir;
  write_small_cifar(dir);
  const tg::CIFAR10 data(dir.path.string(), tg::Split::Train);
  const int padding = 3;
  tg::DataLoader loader(data, {.batch_size = 16,
                               .shuffle = false,
                               .seed = 4,
                               .augment = tg::parse_augmentation("crop=" + std::to_string(padding))});
  std::set<std::pair<int, int>> shifts;
  std::size_t index = 0;
  for (int epoch = 0; epoch < 2; ++epoch) {
    index = 0;
    for (const tg::Batch& batch : loader) {
      for (std::size_t i = 0; i < batch.labels.size(); ++i, ++index) {
        CAPTURE(index);
        const Match m =
            find_match(data, index, batch.images.value().data() + i * data.example_size(), padding, false);
        REQUIRE(m.found);
        shifts.emplace(m.sy, m.sx);
        CHECK(batch.labels[i] == data.label(index));
      }
    }
  }
  CHECK(index == data.size());
  CHECK(shifts.size() > 20);  // of the 49 possible: the offsets are drawn, not fixed
  std::set<int> dys, dxs;
  for (const auto& [sy, sx] : shifts) {
    dys.insert(sy);
    dxs.insert(sx);
  }
  CHECK(dys.size() == 2 * padding + 1);  // every offset, the extremes too
  CHECK(dxs.size() == 2 * padding + 1);
}

TEST_CASE("flip: each example is its image or its mirror, and both happen") {
  TempDir dir;
  write_small_cifar(dir);
  const tg::CIFAR10 data(dir.path.string(), tg::Split::Train);
  tg::DataLoader loader(data,
                        {.batch_size = 50, .shuffle = false, .augment = tg::parse_augmentation("flip")});
  const tg::Batch& batch = *loader.begin();
  std::size_t mirrored = 0;
  for (std::size_t i = 0; i < data.size(); ++i) {
    CAPTURE(i);
    const float* got = batch.images.value().data() + i * data.example_size();
    const bool plain = close(got, expected(data, i, 0, 0, false)),
               mirror = close(got, expected(data, i, 0, 0, true));
    CHECK(plain != mirror);  // the images are not symmetric: exactly one holds
    mirrored += mirror;
  }
  CHECK(mirrored > 10);
  CHECK(mirrored < 40);
}

TEST_CASE("flip,crop=2 on MNIST digits: shifted, maybe mirrored copies, in the shuffled order, labels kept") {
  tg::MNIST data(TG_FIXTURE_DIR "/mnist_small", tg::Split::Train);
  data.keep_first(40);
  tg::DataLoader loader(
      data, {.batch_size = 20, .shuffle = true, .seed = 2, .augment = tg::parse_augmentation("flip,crop=2")});
  const std::vector<std::size_t> order = loader.order(0);
  std::size_t position = 0, mirrored = 0;
  for (const tg::Batch& batch : loader) {
    for (std::size_t i = 0; i < batch.labels.size(); ++i, ++position) {
      CAPTURE(position);
      const Match m = find_match(data, order[position], batch.images.value().data() + i * 784, 2, true);
      CHECK(m.found);
      mirrored += m.mirror;
      CHECK(batch.labels[i] == data.label(order[position]));
    }
  }
  CHECK(position == 40);
  CHECK(mirrored > 5);
  CHECK(mirrored < 35);
}

TEST_CASE(
    "erase: an example is its image with at most one rectangle (2% to 33% of it) set to 0 in every channel") {
  TempDir dir;
  write_small_cifar(dir);
  const tg::CIFAR10 data(dir.path.string(), tg::Split::Train);
  const std::size_t rows = data.rows(), cols = data.cols(), plane = rows * cols;
  tg::DataLoader loader(data,
                        {.batch_size = 50, .shuffle = false, .augment = tg::parse_augmentation("erase")});
  const tg::Batch& batch = *loader.begin();
  std::size_t erased = 0;
  std::set<std::pair<std::size_t, std::size_t>> sizes;
  for (std::size_t i = 0; i < data.size(); ++i) {
    CAPTURE(i);
    const float* got = batch.images.value().data() + i * data.example_size();
    const std::vector<float> want = expected(data, i, 0, 0, false);
    // The bounding box of the pixels that differ from the image, in any channel.
    std::size_t y0 = rows, y1 = 0, x0 = cols, x1 = 0, changed = 0;
    for (std::size_t k = 0; k < want.size(); ++k) {
      if (std::abs(got[k] - want[k]) <= 1e-5f) continue;
      const std::size_t y = (k % plane) / cols, x = k % cols;
      y0 = std::min(y0, y), y1 = std::max(y1, y + 1), x0 = std::min(x0, x), x1 = std::max(x1, x + 1);
      ++changed;
    }
    if (changed == 0) continue;
    ++erased;
    const std::size_t h = y1 - y0, w = x1 - x0;
    sizes.emplace(h, w);
    // Every pixel of the box, in every channel, is 0 (the mean), and nothing outside it changed.
    for (std::size_t c = 0; c < data.channels(); ++c)
      for (std::size_t y = y0; y < y1; ++y)
        for (std::size_t x = x0; x < x1; ++x) CHECK(got[c * plane + y * cols + x] == 0.0f);
    CHECK(changed <= data.channels() * h * w);
    const double share = static_cast<double>(h * w) / static_cast<double>(plane);
    CHECK(share >= 0.01);  // 2% to 33%, give or take the rounding of each side
    CHECK(share <= 0.40);
    CHECK(h < rows);
    CHECK(w < cols);
  }
  CHECK(erased > 12);  // p = 0.5 of 50 examples
  CHECK(erased < 38);
  CHECK(sizes.size() > 5);  // the rectangles are drawn, not fixed
}
