// The PNG charts of `tapegrad train` (chart.png: loss and accuracy per epoch) and `tapegrad eval`
// (eval_confusion.png: the confusion matrix), drawn by hand on an RGB raster with a built-in 5x7 bitmap
// font rather than with PLplot or Cairo: the pixels are deterministic and testable exactly, nothing is read
// at run time (no system fonts, no fontconfig on a fresh Debian), no package is added to the setup, and it
// runs under the sanitizers; two simple charts do not need a plotting library.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "run_checkpoint.hpp"

namespace tg::cli {

struct Rgb {
  std::uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb&) const = default;
};

inline constexpr Rgb kTrainColor{31, 119, 180};  // blue
inline constexpr Rgb kTestColor{255, 127, 14};   // orange
inline constexpr Rgb kTextColor{32, 32, 32};

// An RGB8 raster. Drawing is clipped to the canvas. Text is UTF-8: printable ASCII (32..126) is drawn with
// the font, any other code point as '?'; each character takes 6x8 pixels times `scale`.
class Canvas {
 public:
  Canvas(int width, int height, Rgb background = {255, 255, 255});
  int width() const { return width_; }
  int height() const { return height_; }
  Rgb at(int x, int y) const;  // requires 0 <= x < width, 0 <= y < height
  void set(int x, int y, Rgb color);
  void fill_rect(int x, int y, int w, int h, Rgb color);
  // A line `thickness` pixels wide from (x0, y0) to (x1, y1), both ends included.
  void line(int x0, int y0, int x1, int y1, Rgb color, int thickness = 1);
  // Text with its top-left corner at (x, y); `vertical` turns it 90 degrees, reading upwards from (x, y)
  // as its bottom-left corner.
  void text(int x, int y, std::string_view s, Rgb color, int scale = 1, bool vertical = false);
  static int text_width(std::string_view s, int scale = 1);
  void write_png(const std::string& path) const;  // atomically, through tg::write_png

 private:
  int width_, height_;
  std::vector<std::uint8_t> pixels_;  // interleaved RGB, row by row
};

// The characters of UTF-8 text (code points; bytes 0x80..0xBF continue one).
std::size_t text_length(std::string_view s);
// `s` itself when it has at most `max_chars` characters, else its first max_chars - 1 and a '.'.
std::string shorten(std::string_view s, std::size_t max_chars);

// chart.png: 800x360, the title, `subtitle` (the run, in one line) and the legend (train blue, test orange)
// in the top 40 rows, the loss panel in the left half and the accuracy panel (%) in the right half; epochs
// 1..N along x. NaN and infinite values are left out. tg::Error for an empty history (no file is written).
void write_training_chart(const std::vector<EpochRecord>& history, const std::string& path,
                          const std::string& subtitle = "");

// eval_confusion.png: confusion[t][p] counts images of true class t predicted as p; cells are coloured by
// their share of the row (white 0 to dark blue 1) and show their count when it fits. Class names label the
// rows (true) and the columns (predicted) when cells are 8 pixels or more. tg::Error unless confusion is
// k x k with k = class_names.size() >= 1.
void write_confusion_png(const std::vector<std::vector<std::size_t>>& confusion,
                         const std::vector<std::string>& class_names, const std::string& path);

}  // namespace tg::cli
