// mistakes.png, the test images `tapegrad train` got wrong (apps/cli/pictures.hpp): its layout, each image in
// its own pixels, named with its true class and, in red, the class it was taken for; long names shortened.
#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "apps/tiny_dataset.hpp"
#include "cli/pictures.hpp"
#include "tapegrad.hpp"
#include "test_util.hpp"

using namespace test_util;
using tg::cli::Canvas;
using tg::cli::MistakesLayout;
using tg::cli::Rgb;

namespace {

// n gray images of 28x28, every byte 200 (no text colour), labelled 0, 1, 2, ...
TinySet gray_digits(std::size_t n) {
  std::vector<int> labels(n);
  for (std::size_t i = 0; i < n; ++i) labels[i] = static_cast<int>(i);
  return TinySet(1, 28, 28, std::vector<std::uint8_t>(n * 28 * 28, 200), labels);
}

// Every pixel of [x, x + w) x [y, y + h) is the same in both canvases.
bool same_region(const Canvas& a, const Canvas& b, int x, int y, int w, int h) {
  for (int yy = y; yy < y + h; ++yy)
    for (int xx = x; xx < x + w; ++xx)
      if (!(a.at(xx, yy) == b.at(xx, yy))) return false;
  return true;
}

int count(const Canvas& c, Rgb color, int x, int y, int w, int h) {
  int n = 0;
  for (int yy = y; yy < y + h; ++yy)
    for (int xx = x; xx < x + w; ++xx) n += c.at(xx, yy) == color;
  return n;
}

// Cell m's two label lines as mistakes_picture should draw them, on a white canvas of the picture's size.
Canvas expected_labels(const MistakesLayout& l, std::size_t m, const std::string& truth,
                       const std::string& predicted) {
  Canvas c(l.width, l.height);
  c.text(l.cell_x(m), l.true_label_y(m), truth, tg::cli::kTextColor);
  c.text(l.cell_x(m), l.predicted_label_y(m), predicted, tg::cli::kMistakeColor);
  return c;
}

}  // namespace

TEST_CASE("train's mistakes.png layout: 28x28 images enlarged to 56, cells of 10 characters, 100 shown") {
  const MistakesLayout three = tg::cli::mistakes_layout(28, 28, 3);
  CHECK(three.shown == 3);
  CHECK(three.image_width == 56);
  CHECK(three.image_height == 56);
  CHECK(three.cell_width == 60);  // 10 characters of 6 pixels: wider than the image
  CHECK(three.label_chars == 10);
  CHECK(three.cell_height == 56 + 3 + 9 + 8);
  CHECK(three.width == 8 + Canvas::text_width(tg::cli::kMistakesCaption) + 8);  // the caption is wider
  CHECK(three.height == 8 + 14 + 76 + 8);
  CHECK(three.image_x(1) == 8 + 68 + 2);

  const MistakesLayout many = tg::cli::mistakes_layout(28, 28, 123);
  CHECK(many.shown == 100);
  CHECK(many.width == 8 + 10 * 60 + 9 * 8 + 8);
  CHECK(many.height == 8 + 14 + 10 * 76 + 9 * 8 + 8);
  CHECK(many.cell_y(99) == 8 + 14 + 9 * (76 + 8));

  const MistakesLayout cifar = tg::cli::mistakes_layout(32, 32, 1);
  CHECK(cifar.image_width == 64);
  CHECK(cifar.cell_width == 64);
  const MistakesLayout photo = tg::cli::mistakes_layout(200, 300, 1);  // shrunk to 128 pixels
  CHECK(photo.image_width == 128);
  CHECK(photo.image_height == 85);
  CHECK(photo.label_chars == 21);
}

TEST_CASE("train's mistakes.png names each image's true class and, in red, the class it was taken for") {
  const TinySet test = gray_digits(3);
  const std::vector<std::string> names{"cat", "dog", "bird"};
  const std::vector<tg::cli::Mistake> mistakes{{0, 2}, {2, 1}};
  const Canvas c = tg::cli::mistakes_picture(test, mistakes, names);
  const MistakesLayout l = tg::cli::mistakes_layout(28, 28, 2);
  REQUIRE(c.width() == l.width);
  REQUIRE(c.height() == l.height);
  const int band = 2 * MistakesLayout::kLineHeight;
  for (std::size_t m = 0; m < 2; ++m) {
    INFO("mistake ", m);
    const std::string truth = names[static_cast<std::size_t>(test.label(mistakes[m].index))];
    const std::string taken_for = names[static_cast<std::size_t>(mistakes[m].predicted)];
    const Canvas expected = expected_labels(l, m, truth, taken_for);
    CHECK(same_region(c, expected, l.cell_x(m), l.true_label_y(m), l.cell_width, band));
    CHECK(count(c, tg::cli::kMistakeColor, l.cell_x(m), l.predicted_label_y(m), l.cell_width,
                MistakesLayout::kLineHeight) > 0);
    CHECK(count(c, tg::cli::kTextColor, l.cell_x(m), l.true_label_y(m), l.cell_width,
                MistakesLayout::kLineHeight) > 0);
  }
  // Another predicted name changes the red line, and only it.
  const Canvas other = tg::cli::mistakes_picture(test, {{0, 1}, {2, 1}}, names);
  CHECK_FALSE(same_region(c, other, l.cell_x(0), l.predicted_label_y(0), l.cell_width, 8));
  CHECK(same_region(c, other, 0, 0, l.width, l.predicted_label_y(0)));
  // The caption says how to read them.
  Canvas caption(l.width, l.height);
  caption.text(MistakesLayout::kMargin, MistakesLayout::kMargin, tg::cli::kMistakesCaption,
               tg::cli::kTextColor);
  CHECK(same_region(c, caption, 0, 0, l.width, MistakesLayout::kMargin + 8));
}

TEST_CASE("train's mistakes.png shortens long class names to their cell, and numbers an unnamed class") {
  const TinySet test = gray_digits(2);
  const std::vector<std::string> names{"a_rather_long_class_name", "another_very_long_name"};
  const std::vector<tg::cli::Mistake> mistakes{{0, 1}, {1, 7}};  // class 7 has no name
  const Canvas c = tg::cli::mistakes_picture(test, mistakes, names);
  const MistakesLayout l = tg::cli::mistakes_layout(28, 28, 2);
  const int band = 2 * MistakesLayout::kLineHeight;
  CHECK(same_region(c, expected_labels(l, 0, "a_rather_.", "another_v."), l.cell_x(0), l.true_label_y(0),
                    l.cell_width, band));
  CHECK(same_region(c, expected_labels(l, 1, "another_v.", "7"), l.cell_x(1), l.true_label_y(1), l.cell_width,
                    band));
  // Nothing reaches the gap between the cells, nor past the last one.
  const int gap_x = l.cell_x(0) + l.cell_width;
  CHECK(count(c, {255, 255, 255}, gap_x, l.true_label_y(0), MistakesLayout::kGap, band) ==
        MistakesLayout::kGap * band);
  const int end_x = l.cell_x(1) + l.cell_width;
  CHECK(count(c, {255, 255, 255}, end_x, l.true_label_y(1), l.width - end_x, band) ==
        (l.width - end_x) * band);
}

TEST_CASE("train's mistakes.png draws each image in its own pixels, enlarged, in colour when RGB") {
  const std::size_t side = 8, plane = side * side;
  std::vector<std::uint8_t> bytes(2 * 3 * plane);
  for (std::size_t k = 0; k < bytes.size(); ++k) bytes[k] = static_cast<std::uint8_t>((k * 37 + 11) % 256);
  const TinySet test(3, side, side, bytes, {0, 1});
  const Canvas c = tg::cli::mistakes_picture(test, {{1, 0}}, {"a", "b"});
  const MistakesLayout l = tg::cli::mistakes_layout(side, side, 1);
  REQUIRE(l.image_width == 64);  // 8x
  const std::uint8_t* px = test.pixels(1);
  for (int y = 0; y < l.image_height; ++y)
    for (int x = 0; x < l.image_width; ++x) {
      const std::size_t k = static_cast<std::size_t>(y / 8) * side + static_cast<std::size_t>(x / 8);
      const Rgb want{px[k], px[plane + k], px[2 * plane + k]};
      if (!(c.at(l.image_x(0) + x, l.cell_y(0) + y) == want)) {
        FAIL_CHECK("pixel ", x, ", ", y);
        return;
      }
    }
}

TEST_CASE("train writes no mistakes.png when the model got every test image right") {
  TempDir dir;
  const TinySet test = gray_digits(2);
  CHECK_FALSE(tg::cli::write_mistakes_png(test, {}, {"a", "b"}, dir.file("mistakes.png")));
  CHECK_FALSE(std::filesystem::exists(dir.file("mistakes.png")));
  CHECK_THROWS_AS(tg::cli::mistakes_picture(test, {}, {"a", "b"}), tg::Error);
  CHECK(tg::cli::write_mistakes_png(test, {{0, 1}}, {"a", "b"}, dir.file("mistakes.png")));
  CHECK(std::filesystem::exists(dir.file("mistakes.png")));
}
