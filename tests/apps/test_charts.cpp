// The PNG charts of `tapegrad train` (chart.png) and `tapegrad eval` (eval_confusion.png),
// apps/cli/charts.hpp: read back with stb_image and checked where their colours and text are.
#include <doctest/doctest.h>
#include <stb/stb_image.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "cli/charts.hpp"
#include "tapegrad.hpp"
#include "test_util.hpp"

using namespace test_util;
using tg::cli::Rgb;

namespace {

constexpr Rgb kDarkBlue{8, 48, 107}, kWhite{255, 255, 255};
constexpr int kChartTop = 40;  // chart.png's title and legend rows

struct Image {
  int width = 0, height = 0;
  std::vector<std::uint8_t> rgb;
  Rgb at(int x, int y) const {
    const std::uint8_t* p = &rgb[(static_cast<std::size_t>(y) * width + x) * 3];
    return {p[0], p[1], p[2]};
  }
};

Image read_png(const std::string& path) {
  int w = 0, h = 0, channels = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> data(stbi_load(path.c_str(), &w, &h, &channels, 3),
                                                 stbi_image_free);
  REQUIRE_MESSAGE(data != nullptr, path, " does not decode");
  return {w, h, std::vector<std::uint8_t>(data.get(), data.get() + static_cast<std::size_t>(w) * h * 3)};
}

struct Pixel {
  int x, y;
};
// The pixels of exactly `color` in [x0, x1) x [y0, y1).
std::vector<Pixel> find(const Image& img, Rgb color, int x0, int y0, int x1, int y1) {
  std::vector<Pixel> out;
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x)
      if (img.at(x, y) == color) out.push_back({x, y});
  return out;
}

// The mean row of the pixels within 3 columns of column x.
double mean_row_near(const std::vector<Pixel>& pixels, int x) {
  double sum = 0;
  int n = 0;
  for (const Pixel& p : pixels)
    if (std::abs(p.x - x) <= 3) sum += p.y, ++n;
  REQUIRE(n > 0);
  return sum / n;
}

// Losses falling from 2.3 (train) / 1.9 (test), accuracies rising from 20% / 30%.
std::vector<tg::cli::EpochRecord> falling_loss(int epochs) {
  std::vector<tg::cli::EpochRecord> out;
  for (int e = 0; e < epochs; ++e) {
    const double t = epochs == 1 ? 0 : static_cast<double>(e) / (epochs - 1);
    out.push_back({.train_loss = 2.3 - 2.0 * t,
                   .train_accuracy = 0.2 + 0.7 * t,
                   .test_loss = 1.9 - 1.4 * t,
                   .test_accuracy = 0.3 + 0.55 * t});
  }
  return out;
}

int brightness(Rgb c) { return c.r + c.g + c.b; }

}  // namespace

TEST_CASE("chart.png is 800x360 with the title on top and the train and test lines in both panels") {
  TempDir dir;
  const std::string path = dir.file("chart.png");
  tg::cli::write_training_chart(falling_loss(5), path);
  const Image img = read_png(path);
  REQUIRE(img.width == 800);
  REQUIRE(img.height == 360);
  CHECK(find(img, tg::cli::kTextColor, 200, 0, 600, kChartTop).size() > 100);  // the title's letters
  for (const Rgb color : {tg::cli::kTrainColor, tg::cli::kTestColor}) {
    CHECK(find(img, color, 0, kChartTop, 400, 360).size() > 200);    // loss
    CHECK(find(img, color, 400, kChartTop, 800, 360).size() > 200);  // accuracy
    CHECK(find(img, color, 0, 0, 800, kChartTop).size() > 0);        // the legend
  }
}

TEST_CASE("chart.png names the run in a line under the title") {
  TempDir dir;
  tg::cli::write_training_chart(falling_loss(3), dir.file("plain.png"));
  tg::cli::write_training_chart(falling_loss(3), dir.file("named.png"),
                                "lenet on mnist .cache/mnist, sgd lr 0.05");
  const Image plain = read_png(dir.file("plain.png")), named = read_png(dir.file("named.png"));
  CHECK(find(plain, tg::cli::kTextColor, 200, 30, 600, kChartTop).empty());
  CHECK(find(named, tg::cli::kTextColor, 200, 30, 600, kChartTop).size() > 100);
}

TEST_CASE("chart.png draws a higher loss higher and a higher accuracy higher") {
  TempDir dir;
  tg::cli::write_training_chart(falling_loss(8), dir.file("chart.png"));
  const Image img = read_png(dir.file("chart.png"));
  for (const Rgb color : {tg::cli::kTrainColor, tg::cli::kTestColor}) {
    const std::vector<Pixel> loss = find(img, color, 0, kChartTop, 400, 360);
    const std::vector<Pixel> accuracy = find(img, color, 400, kChartTop, 800, 360);
    REQUIRE_FALSE(loss.empty());
    REQUIRE_FALSE(accuracy.empty());
    const auto [first_loss, last_loss] = std::minmax_element(
        loss.begin(), loss.end(), [](const Pixel& a, const Pixel& b) { return a.x < b.x; });
    // falling loss: the first epoch's pixels are above (smaller rows than) the last epoch's
    CHECK(mean_row_near(loss, first_loss->x) + 50 < mean_row_near(loss, last_loss->x));
    const auto [first_acc, last_acc] = std::minmax_element(
        accuracy.begin(), accuracy.end(), [](const Pixel& a, const Pixel& b) { return a.x < b.x; });
    CHECK(mean_row_near(accuracy, first_acc->x) > mean_row_near(accuracy, last_acc->x) + 50);
  }
}

TEST_CASE("chart.png of one epoch shows its point in each panel") {
  TempDir dir;
  tg::cli::write_training_chart(falling_loss(1), dir.file("chart.png"));
  const Image img = read_png(dir.file("chart.png"));
  for (const Rgb color : {tg::cli::kTrainColor, tg::cli::kTestColor}) {
    CHECK(find(img, color, 0, kChartTop, 400, 360).size() >= 9);  // a marker at least 3x3
    CHECK(find(img, color, 400, kChartTop, 800, 360).size() >= 9);
  }
}

TEST_CASE("chart.png leaves out NaN and infinite values, and draws 1000 epochs") {
  TempDir dir;
  std::vector<tg::cli::EpochRecord> history = falling_loss(1000);
  for (tg::cli::EpochRecord& m : history) m.test_loss = std::numeric_limits<double>::quiet_NaN();
  history[10].train_loss = std::numeric_limits<double>::infinity();
  history[500].train_loss = -std::numeric_limits<double>::infinity();
  history[20].train_accuracy = std::numeric_limits<double>::quiet_NaN();
  tg::cli::write_training_chart(history, dir.file("chart.png"));
  const Image img = read_png(dir.file("chart.png"));
  CHECK(find(img, tg::cli::kTestColor, 0, kChartTop, 400, 360).empty());  // no test loss to draw
  CHECK(find(img, tg::cli::kTrainColor, 0, kChartTop, 400, 360).size() > 300);
  CHECK(find(img, tg::cli::kTestColor, 400, kChartTop, 800, 360).size() > 300);
}

TEST_CASE("write_training_chart of no epochs is a tg::Error and writes no file") {
  TempDir dir;
  CHECK_THROWS_WITH_AS(tg::cli::write_training_chart({}, dir.file("chart.png")),
                       doctest::Contains("no epochs"), tg::Error);
  CHECK_FALSE(std::filesystem::exists(dir.file("chart.png")));
}

TEST_CASE(
    "eval_confusion.png of a perfect classifier: dark diagonal with white counts, white cells elsewhere") {
  TempDir dir;
  tg::cli::write_confusion_png({{50, 0, 0}, {0, 40, 0}, {0, 0, 30}}, {"cat", "dog", "bird"},
                               dir.file("confusion.png"));
  const Image img = read_png(dir.file("confusion.png"));
  // The diagonal cells are exactly the dark end of the scale; their bounding box is the grid.
  const std::vector<Pixel> dark = find(img, kDarkBlue, 0, 0, img.width, img.height);
  REQUIRE_FALSE(dark.empty());
  int x0 = img.width, y0 = img.height, x1 = 0, y1 = 0;
  for (const Pixel& p : dark) x0 = std::min(x0, p.x), y0 = std::min(y0, p.y), x1 = std::max(x1, p.x);
  for (const Pixel& p : dark) y1 = std::max(y1, p.y);
  const int cell = (x1 - x0 + 2) / 3;
  CHECK(cell == (y1 - y0 + 2) / 3);  // square cells
  for (int t = 0; t < 3; ++t)
    for (int p = 0; p < 3; ++p) {
      const int cx = x0 + p * cell + 2, cy = y0 + t * cell + 2;  // inside the cell, off its count
      INFO("cell ", t, ",", p);
      if (t == p) {
        CHECK(img.at(cx, cy) == kDarkBlue);
        CHECK(find(img, kWhite, cx, cy, cx + cell - 4, cy + cell - 4).size() > 5);  // its count
      } else {
        CHECK(brightness(img.at(cx, cy)) > brightness(img.at(x0 + t * cell + 2, cy)));
        CHECK(find(img, tg::cli::kTextColor, cx, cy, cx + cell - 4, cy + cell - 4).size() > 5);  // "0"
      }
    }
  // the class names label the rows left of the grid and the columns above it (off the axis titles)
  CHECK(find(img, tg::cli::kTextColor, x0 - 30, y0, x0 - 2, y1).size() > 30);
  CHECK(find(img, tg::cli::kTextColor, x0, y0 - 12, x1, y0 - 2).size() > 30);
}

TEST_CASE("eval_confusion.png shades a cell by its share of the row") {
  TempDir dir;
  tg::cli::write_confusion_png({{8, 2}, {0, 10}}, {"a", "b"}, dir.file("confusion.png"));
  const Image img = read_png(dir.file("confusion.png"));
  const std::vector<Pixel> dark = find(img, kDarkBlue, 0, 0, img.width, img.height);  // cell 1,1 alone
  REQUIRE_FALSE(dark.empty());
  const int cell = dark.back().x - dark.front().x + 2, x = dark.front().x - cell + 1,
            y = dark.front().y - cell;
  const int b00 = brightness(img.at(x, y)), b01 = brightness(img.at(x + cell, y)),
            b10 = brightness(img.at(x, y + cell));
  CHECK(b00 < b01);  // 80% darker than 20%
  CHECK(b01 < b10);  // 20% darker than none
  CHECK(img.at(x, y + cell) == kWhite);
}

TEST_CASE("eval_confusion.png of 12 classes with long UTF-8 names, and of 256 classes") {
  TempDir dir;
  std::vector<std::string> names;
  for (int c = 0; c < 12; ++c)
    names.push_back("Klasse-\xC3\xBC\xC3\xA9-" + std::to_string(c) + "-\xE2\x82\xAC-sehr-lang");
  std::vector<std::vector<std::size_t>> confusion(12, std::vector<std::size_t>(12, 3));
  tg::cli::write_confusion_png(confusion, names, dir.file("c12.png"));
  const Image twelve = read_png(dir.file("c12.png"));
  CHECK(twelve.width < 800);
  CHECK(twelve.height < 800);

  std::vector<std::string> many;
  for (int c = 0; c < 256; ++c) many.push_back("class " + std::to_string(c));
  std::vector<std::vector<std::size_t>> big(256, std::vector<std::size_t>(256, 0));
  for (std::size_t c = 0; c < 256; ++c) big[c][c] = 1000;
  tg::cli::write_confusion_png(big, many, dir.file("c256.png"));
  const Image img = read_png(dir.file("c256.png"));
  CHECK(img.width < 700);
  CHECK(img.height < 700);
  CHECK(find(img, kDarkBlue, 0, 0, img.width, img.height).size() >= 256);  // the diagonal
}

TEST_CASE("write_confusion_png refuses a matrix that is not classes x classes") {
  TempDir dir;
  CHECK_THROWS_AS(tg::cli::write_confusion_png({{1, 2}, {3, 4}}, {"a", "b", "c"}, dir.file("x.png")),
                  tg::Error);
  CHECK_THROWS_AS(tg::cli::write_confusion_png({{1, 2}, {3}}, {"a", "b"}, dir.file("x.png")), tg::Error);
  CHECK_THROWS_AS(tg::cli::write_confusion_png({}, {}, dir.file("x.png")), tg::Error);
}

TEST_CASE("chart text: a non-ASCII character is one '?', and long names are shortened by characters") {
  const std::string euro = "\xE2\x82\xAC", u = "\xC3\xBC";
  CHECK(tg::cli::text_length("a" + euro + u) == 3);
  CHECK(tg::cli::Canvas::text_width("a" + euro) == tg::cli::Canvas::text_width("ab"));
  tg::cli::Canvas a(20, 10), b(20, 10);
  a.text(1, 1, euro, tg::cli::kTextColor);
  b.text(1, 1, "?", tg::cli::kTextColor);
  int differ = 0, ink = 0;
  for (int y = 0; y < 10; ++y)
    for (int x = 0; x < 20; ++x)
      differ += !(a.at(x, y) == b.at(x, y)), ink += a.at(x, y) == tg::cli::kTextColor;
  CHECK(differ == 0);
  CHECK(ink > 5);

  CHECK(tg::cli::shorten("airplane", 10) == "airplane");
  CHECK(tg::cli::shorten("automobile", 10) == "automobile");
  CHECK(tg::cli::shorten("automobiles", 10) == "automobil.");
  CHECK(tg::cli::shorten(u + u + u + u + "abcdefgh", 6) == u + u + u + u + "a.");  // no cut UTF-8 sequence
}

TEST_CASE("tapegrad train writes chart.png and tapegrad eval writes eval_confusion.png") {
  TempDir dir;
  const std::string tapegrad = TG_TAPEGRAD_BIN;
  const RunResult train = run(tapegrad + " train --data " + kSmallMnist +
                              " --limit 256 --epochs 1 --threads 1 --out " + dir.path.string());
  INFO(train.output);
  REQUIRE(train.code == 0);
  CHECK(train.output.find("chart.png") != std::string::npos);
  const Image chart = read_png(dir.file("chart.png"));
  CHECK(chart.width == 800);
  CHECK(find(chart, tg::cli::kTestColor, 400, kChartTop, 800, 360).size() >= 9);

  const RunResult eval = run(tapegrad + " eval " + dir.file("model.safetensors") + " --data " + kSmallMnist +
                             " --threads 1 --out " + dir.file("eval"));
  INFO(eval.output);
  REQUIRE(eval.code == 0);
  CHECK(eval.output.find("eval_confusion.png") != std::string::npos);
  const Image confusion = read_png(dir.file("eval/eval_confusion.png"));
  CHECK(confusion.width > 300);
  CHECK(confusion.height > 300);
}
