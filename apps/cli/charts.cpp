#include "charts.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <utility>

#include "tapegrad.hpp"

namespace tg::cli {

namespace {

// The classic 5x7 LCD font, printable ASCII 32..126: five columns per glyph, bit 0 the top row; bit 7 holds
// the descenders of g, j, p, q and y.
constexpr std::uint8_t kFont[95][5] = {
    {0x00, 0x00, 0x00, 0x00, 0x00}, {0x00, 0x00, 0x5F, 0x00, 0x00}, {0x00, 0x07, 0x00, 0x07, 0x00},
    {0x14, 0x7F, 0x14, 0x7F, 0x14}, {0x24, 0x2A, 0x7F, 0x2A, 0x12}, {0x23, 0x13, 0x08, 0x64, 0x62},
    {0x36, 0x49, 0x55, 0x22, 0x50}, {0x00, 0x05, 0x03, 0x00, 0x00}, {0x00, 0x1C, 0x22, 0x41, 0x00},
    {0x00, 0x41, 0x22, 0x1C, 0x00}, {0x08, 0x2A, 0x1C, 0x2A, 0x08}, {0x08, 0x08, 0x3E, 0x08, 0x08},
    {0x00, 0x50, 0x30, 0x00, 0x00}, {0x08, 0x08, 0x08, 0x08, 0x08}, {0x00, 0x60, 0x60, 0x00, 0x00},
    {0x20, 0x10, 0x08, 0x04, 0x02}, {0x3E, 0x51, 0x49, 0x45, 0x3E}, {0x00, 0x42, 0x7F, 0x40, 0x00},
    {0x42, 0x61, 0x51, 0x49, 0x46}, {0x21, 0x41, 0x45, 0x4B, 0x31}, {0x18, 0x14, 0x12, 0x7F, 0x10},
    {0x27, 0x45, 0x45, 0x45, 0x39}, {0x3C, 0x4A, 0x49, 0x49, 0x30}, {0x01, 0x71, 0x09, 0x05, 0x03},
    {0x36, 0x49, 0x49, 0x49, 0x36}, {0x06, 0x49, 0x49, 0x29, 0x1E}, {0x00, 0x36, 0x36, 0x00, 0x00},
    {0x00, 0x56, 0x36, 0x00, 0x00}, {0x08, 0x14, 0x22, 0x41, 0x00}, {0x14, 0x14, 0x14, 0x14, 0x14},
    {0x00, 0x41, 0x22, 0x14, 0x08}, {0x02, 0x01, 0x51, 0x09, 0x06}, {0x32, 0x49, 0x79, 0x41, 0x3E},
    {0x7E, 0x11, 0x11, 0x11, 0x7E}, {0x7F, 0x49, 0x49, 0x49, 0x36}, {0x3E, 0x41, 0x41, 0x41, 0x22},
    {0x7F, 0x41, 0x41, 0x22, 0x1C}, {0x7F, 0x49, 0x49, 0x49, 0x41}, {0x7F, 0x09, 0x09, 0x09, 0x01},
    {0x3E, 0x41, 0x49, 0x49, 0x7A}, {0x7F, 0x08, 0x08, 0x08, 0x7F}, {0x00, 0x41, 0x7F, 0x41, 0x00},
    {0x20, 0x40, 0x41, 0x3F, 0x01}, {0x7F, 0x08, 0x14, 0x22, 0x41}, {0x7F, 0x40, 0x40, 0x40, 0x40},
    {0x7F, 0x02, 0x0C, 0x02, 0x7F}, {0x7F, 0x04, 0x08, 0x10, 0x7F}, {0x3E, 0x41, 0x41, 0x41, 0x3E},
    {0x7F, 0x09, 0x09, 0x09, 0x06}, {0x3E, 0x41, 0x51, 0x21, 0x5E}, {0x7F, 0x09, 0x19, 0x29, 0x46},
    {0x46, 0x49, 0x49, 0x49, 0x31}, {0x01, 0x01, 0x7F, 0x01, 0x01}, {0x3F, 0x40, 0x40, 0x40, 0x3F},
    {0x1F, 0x20, 0x40, 0x20, 0x1F}, {0x3F, 0x40, 0x38, 0x40, 0x3F}, {0x63, 0x14, 0x08, 0x14, 0x63},
    {0x07, 0x08, 0x70, 0x08, 0x07}, {0x61, 0x51, 0x49, 0x45, 0x43}, {0x00, 0x7F, 0x41, 0x41, 0x00},
    {0x02, 0x04, 0x08, 0x10, 0x20}, {0x00, 0x41, 0x41, 0x7F, 0x00}, {0x04, 0x02, 0x01, 0x02, 0x04},
    {0x40, 0x40, 0x40, 0x40, 0x40}, {0x00, 0x01, 0x02, 0x04, 0x00}, {0x20, 0x54, 0x54, 0x54, 0x78},
    {0x7F, 0x48, 0x44, 0x44, 0x38}, {0x38, 0x44, 0x44, 0x44, 0x20}, {0x38, 0x44, 0x44, 0x48, 0x7F},
    {0x38, 0x54, 0x54, 0x54, 0x18}, {0x08, 0x7E, 0x09, 0x01, 0x02}, {0x18, 0xA4, 0xA4, 0xA4, 0x7C},
    {0x7F, 0x08, 0x04, 0x04, 0x78}, {0x00, 0x44, 0x7D, 0x40, 0x00}, {0x40, 0x80, 0x84, 0x7D, 0x00},
    {0x7F, 0x10, 0x28, 0x44, 0x00}, {0x00, 0x41, 0x7F, 0x40, 0x00}, {0x7C, 0x04, 0x18, 0x04, 0x78},
    {0x7C, 0x08, 0x04, 0x04, 0x78}, {0x38, 0x44, 0x44, 0x44, 0x38}, {0xFC, 0x24, 0x24, 0x24, 0x18},
    {0x18, 0x24, 0x24, 0x18, 0xFC}, {0x7C, 0x08, 0x04, 0x04, 0x08}, {0x48, 0x54, 0x54, 0x54, 0x20},
    {0x04, 0x3F, 0x44, 0x40, 0x20}, {0x3C, 0x40, 0x40, 0x20, 0x7C}, {0x1C, 0x20, 0x40, 0x20, 0x1C},
    {0x3C, 0x40, 0x30, 0x40, 0x3C}, {0x44, 0x28, 0x10, 0x28, 0x44}, {0x1C, 0xA0, 0xA0, 0xA0, 0x7C},
    {0x44, 0x64, 0x54, 0x4C, 0x44}, {0x00, 0x08, 0x36, 0x41, 0x00}, {0x00, 0x00, 0x7F, 0x00, 0x00},
    {0x00, 0x41, 0x36, 0x08, 0x00}, {0x08, 0x04, 0x08, 0x10, 0x08}};
constexpr int kCharWidth = 6, kCharHeight = 8;  // a glyph and the space after and below it (or its descender)

bool continues(char byte) { return (static_cast<unsigned char>(byte) & 0xC0) == 0x80; }

}  // namespace

Canvas::Canvas(int width, int height, Rgb background)
    : width_(width),
      height_(height),
      pixels_(static_cast<std::size_t>(std::max(width, 0)) * std::max(height, 0) * 3) {
  if (width <= 0 || height <= 0) fail("Canvas: ", width, "x", height, " pixels; expected a positive size");
  fill_rect(0, 0, width, height, background);
}

Rgb Canvas::at(int x, int y) const {
  const std::uint8_t* p = &pixels_[(static_cast<std::size_t>(y) * width_ + x) * 3];
  return {p[0], p[1], p[2]};
}

void Canvas::set(int x, int y, Rgb color) {
  if (x < 0 || y < 0 || x >= width_ || y >= height_) return;
  std::uint8_t* p = &pixels_[(static_cast<std::size_t>(y) * width_ + x) * 3];
  p[0] = color.r, p[1] = color.g, p[2] = color.b;
}

void Canvas::fill_rect(int x, int y, int w, int h, Rgb color) {
  for (int yy = std::max(y, 0); yy < std::min(y + h, height_); ++yy)
    for (int xx = std::max(x, 0); xx < std::min(x + w, width_); ++xx) set(xx, yy, color);
}

void Canvas::line(int x0, int y0, int x1, int y1, Rgb color, int thickness) {
  // Bresenham, with a thickness x thickness square at each step.
  const int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
  for (int err = dx + dy;;) {
    fill_rect(x0 - thickness / 2, y0 - thickness / 2, thickness, thickness, color);
    if (x0 == x1 && y0 == y1) return;
    const int e2 = 2 * err;
    if (e2 >= dy) err += dy, x0 += sx;
    if (e2 <= dx) err += dx, y0 += sy;
  }
}

void Canvas::text(int x, int y, std::string_view s, Rgb color, int scale, bool vertical) {
  int u0 = 0;  // along the text, in font pixels
  for (const char byte : s) {
    if (continues(byte)) continue;
    const auto c = static_cast<unsigned char>(byte);
    const std::uint8_t* glyph = kFont[(c >= 32 && c <= 126 ? c : '?') - 32];
    for (int u = 0; u < 5; ++u)
      for (int v = 0; v < 8; ++v) {
        if (!((glyph[u] >> v) & 1)) continue;
        if (vertical)  // turned 90 degrees counter-clockwise: along the text is up, the glyph's top is left
          fill_rect(x + v * scale, y - (u0 + u + 1) * scale + 1, scale, scale, color);
        else
          fill_rect(x + (u0 + u) * scale, y + v * scale, scale, scale, color);
      }
    u0 += kCharWidth;
  }
}

int Canvas::text_width(std::string_view s, int scale) {
  return static_cast<int>(text_length(s)) * kCharWidth * scale;
}

void Canvas::write_png(const std::string& path) const {
  tg::write_png(path, pixels_, static_cast<std::size_t>(width_), static_cast<std::size_t>(height_), 3);
}

std::size_t text_length(std::string_view s) {
  return static_cast<std::size_t>(std::count_if(s.begin(), s.end(), [](char b) { return !continues(b); }));
}

std::string shorten(std::string_view s, std::size_t max_chars) {
  if (text_length(s) <= max_chars) return std::string(s);
  if (max_chars == 0) return "";
  std::size_t end = 0, chars = 0;
  while (end < s.size() && (continues(s[end]) || chars++ < max_chars - 1)) ++end;
  return std::string(s.substr(0, end)) + ".";
}

// ---- chart.png

namespace {

constexpr Rgb kWhite{255, 255, 255}, kGrid{226, 226, 226}, kAxis{96, 96, 96};

// 1, 2 or 5 times a power of ten, making about `steps` steps of `span` (> 0).
double nice_step(double span, int steps) {
  const double raw = span / steps, power = std::pow(10.0, std::floor(std::log10(raw))), f = raw / power;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * power;
}

struct Axis {
  double lo = 0, hi = 1, step = 0.2;
};

// Loss: from 0 (or below, for a negative loss) to a multiple of a nice step above the largest value.
Axis loss_axis(const std::vector<double>& values) {
  Axis a{0, 0, 0};
  for (const double v : values) a.lo = std::min(a.lo, v), a.hi = std::max(a.hi, v);
  if (a.hi <= a.lo) a.hi = a.lo + 1;
  a.step = nice_step(a.hi - a.lo, 5);
  a.lo = std::floor(a.lo / a.step) * a.step;
  a.hi = std::ceil(a.hi / a.step) * a.step;
  // Values near the double's limits: the data is drawn clamped to the panel's edge instead.
  if (!std::isfinite(a.hi - a.lo) || !std::isfinite(a.step)) return {};
  return a;
}

// Accuracy in %: the data's range widened to multiples of 10, at least 10 wide, then of the tick step (which
// divides 100).
Axis accuracy_axis(const std::vector<double>& values) {
  if (values.empty()) return {0, 100, 20};
  Axis a{std::floor(*std::min_element(values.begin(), values.end()) / 10) * 10,
         std::ceil(*std::max_element(values.begin(), values.end()) / 10) * 10, 0};
  if (a.hi <= a.lo) {  // every value on the same multiple of 10
    if (a.hi < 100)
      a.hi = a.lo + 10;
    else
      a.lo = a.hi - 10;
  }
  a.step = nice_step(a.hi - a.lo, 5);
  a.lo = std::floor(a.lo / a.step) * a.step;
  a.hi = std::ceil(a.hi / a.step) * a.step;
  return a;
}

std::string tick_label(double v, double step) {
  char buf[32];
  if (std::abs(v) < step * 1e-6) v = 0;  // not "-0.0" from lo + i * step
  if (std::abs(v) >= 1e6 || step < 1e-4)
    std::snprintf(buf, sizeof buf, "%.3g", v);
  else
    std::snprintf(buf, sizeof buf, "%.*f",
                  step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9)), v);
  return buf;
}

struct Series {
  std::vector<double> values;  // per epoch
  Rgb color;
};

std::vector<double> finite_values(const Series& a, const Series& b) {
  std::vector<double> out;
  for (const Series* s : {&a, &b})
    std::copy_if(s->values.begin(), s->values.end(), std::back_inserter(out),
                 [](double v) { return std::isfinite(v); });
  return out;
}

// One panel: plot area [left, right] x [top, bottom], gridlines and ticks, the series as 2-pixel lines
// (broken at non-finite values) with markers at the points when they are few or stand alone.
void draw_panel(Canvas& c, int left, int top, int right, int bottom, std::string_view title, const Axis& y,
                const std::vector<Series>& series) {
  const std::size_t n = series.front().values.size();
  const auto px_y = [&](double v) {
    return static_cast<int>(std::lround(
        std::clamp(bottom - (v - y.lo) / (y.hi - y.lo) * (bottom - top), 1.0 * top, 1.0 * bottom)));
  };
  const int pad = 8;                          // keeps the first and last points off the frame
  const auto px_x = [&](std::size_t epoch) {  // 1-based
    if (n == 1) return (left + right) / 2;
    return left + pad +
           static_cast<int>(std::lround(static_cast<double>(epoch - 1) * (right - left - 2 * pad) /
                                        static_cast<double>(n - 1)));
  };

  c.text((left + right - Canvas::text_width(title)) / 2, top - 14, title, kTextColor);
  const int y_ticks = static_cast<int>(std::lround((y.hi - y.lo) / y.step));
  for (int i = 0; i <= y_ticks; ++i) {
    const double v = y.lo + i * y.step;
    const int py = px_y(v);
    c.line(left, py, right, py, kGrid);
    const std::string label = tick_label(v, y.step);
    c.text(left - 5 - Canvas::text_width(label), py - 3, label, kTextColor);
  }
  const std::size_t x_step = n < 10 ? 1 : static_cast<std::size_t>(nice_step(static_cast<double>(n), 8));
  for (std::size_t e = x_step; e <= n; e += x_step) {
    const int px = px_x(e);
    c.line(px, top, px, bottom, kGrid);
    const std::string label = std::to_string(e);
    c.text(px - Canvas::text_width(label) / 2 + 1, bottom + 5, label, kTextColor);
  }
  c.text((left + right - Canvas::text_width("epoch")) / 2, bottom + 18, "epoch", kTextColor);
  c.line(left, top, right, top, kAxis);
  c.line(left, bottom, right, bottom, kAxis);
  c.line(left, top, left, bottom, kAxis);
  c.line(right, top, right, bottom, kAxis);

  for (const Series& s : series) {
    const auto ok = [&](std::size_t i) { return i < n && std::isfinite(s.values[i]); };
    for (std::size_t i = 0; i < n; ++i) {
      if (!ok(i)) continue;
      if (ok(i + 1)) c.line(px_x(i + 1), px_y(s.values[i]), px_x(i + 2), px_y(s.values[i + 1]), s.color, 2);
      if (n <= 40 || ((i == 0 || !ok(i - 1)) && !ok(i + 1)))
        c.fill_rect(px_x(i + 1) - 2, px_y(s.values[i]) - 2, 5, 5, s.color);
    }
  }
}

}  // namespace

void write_training_chart(const std::vector<EpochRecord>& history, const std::string& path,
                          const std::string& subtitle) {
  if (history.empty()) fail("write_training_chart: ", path, ": no epochs to draw");
  Series train_loss{{}, kTrainColor}, test_loss{{}, kTestColor}, train_acc{{}, kTrainColor},
      test_acc{{}, kTestColor};
  for (const EpochRecord& m : history) {
    train_loss.values.push_back(m.train_loss);
    test_loss.values.push_back(m.test_loss);
    train_acc.values.push_back(100 * m.train_accuracy);
    test_acc.values.push_back(100 * m.test_accuracy);
  }
  const int width = 800, height = 360;
  Canvas c(width, height);
  const std::string title = "loss and accuracy per epoch";
  c.text((width - Canvas::text_width(title, 2)) / 2, 10, title, kTextColor, 2);
  const std::string run = shorten(subtitle, 110);
  c.text((width - Canvas::text_width(run)) / 2, 32, run, kTextColor);
  int x = width - 12 - Canvas::text_width("train  test") - 2 * 14;  // the legend, top right
  for (const auto& [name, color] : {std::pair{"train", kTrainColor}, std::pair{"test", kTestColor}}) {
    c.fill_rect(x, 13, 10, 10, color);
    c.text(x + 14, 15, name, kTextColor);
    x += 14 + Canvas::text_width(name) + 12;
  }
  draw_panel(c, 56, 64, width / 2 - 16, height - 44, "loss", loss_axis(finite_values(train_loss, test_loss)),
             {train_loss, test_loss});
  draw_panel(c, width / 2 + 56, 64, width - 16, height - 44, "accuracy %",
             accuracy_axis(finite_values(train_acc, test_acc)), {train_acc, test_acc});
  c.write_png(path);
}

// ---- eval_confusion.png

void write_confusion_png(const std::vector<std::vector<std::size_t>>& confusion,
                         const std::vector<std::string>& class_names, const std::string& path) {
  const std::size_t k = class_names.size();
  if (k == 0) fail("write_confusion_png: ", path, ": no classes");
  if (confusion.size() != k) fail("write_confusion_png: ", confusion.size(), " rows for ", k, " classes");
  for (const auto& row : confusion)
    if (row.size() != k) fail("write_confusion_png: a row of ", row.size(), " columns for ", k, " classes");

  const int cell = static_cast<int>(std::clamp<std::size_t>(576 / k, 1, 64)),
            grid = cell * static_cast<int>(k);
  const bool labels = cell >= kCharHeight;
  std::vector<std::string> names;
  int name_w = 0;
  for (const std::string& name : class_names) {
    names.push_back(shorten(name, 10));
    name_w = std::max(name_w, Canvas::text_width(names.back()));
  }
  if (!labels) name_w = 0;
  const bool flat_columns = name_w <= cell - 2;  // else the column names are turned to read upwards
  const int margin = 8, left = margin + kCharHeight + 6 + (labels ? name_w + 6 : 0);
  const int top = margin + kCharHeight + 6 + (!labels ? 0 : flat_columns ? kCharHeight + 2 : name_w + 4);
  const std::string caption = "colour: share of the row (true class)";
  Canvas c(std::max(left + grid + margin, 2 * margin + Canvas::text_width(caption)),
           top + grid + 6 + kCharHeight + margin);

  c.text(std::max(left + (grid - Canvas::text_width("predicted")) / 2, 0), margin, "predicted", kTextColor);
  c.text(margin, top + (grid + Canvas::text_width("true")) / 2, "true", kTextColor, 1, true);
  c.text(margin, top + grid + 6, caption, kTextColor);
  const Rgb dark{8, 48, 107};
  for (std::size_t t = 0; t < k; ++t) {
    std::size_t row_sum = 0;
    for (const std::size_t n : confusion[t]) row_sum += n;
    const int y = top + static_cast<int>(t) * cell;
    for (std::size_t p = 0; p < k; ++p) {
      const double share = row_sum ? static_cast<double>(confusion[t][p]) / static_cast<double>(row_sum) : 0;
      const auto mix = [&](std::uint8_t to) {
        return static_cast<std::uint8_t>(std::lround(255 + (to - 255) * share));
      };
      const int x = left + static_cast<int>(p) * cell;
      c.fill_rect(x, y, cell, cell, {mix(dark.r), mix(dark.g), mix(dark.b)});
      const std::string count = std::to_string(confusion[t][p]);
      if (cell >= kCharHeight + 2 && Canvas::text_width(count) <= cell - 2)
        c.text(x + (cell - Canvas::text_width(count)) / 2 + 1, y + (cell - 7) / 2, count,
               share > 0.5 ? kWhite : kTextColor);
    }
  }
  const Rgb border{200, 200, 200};
  for (std::size_t i = 0; i <= k; i += labels ? 1 : k) {  // every cell's edges, or the grid's when tiny
    const int at = i == 0 ? -1 : static_cast<int>(i) * cell;
    c.line(left + at, top - 1, left + at, top + grid, border);
    c.line(left - 1, top + at, left + grid, top + at, border);
  }
  for (std::size_t i = 0; labels && i < k; ++i) {
    const int at = static_cast<int>(i) * cell, w = Canvas::text_width(names[i]);
    c.text(left - 6 - w, top + at + (cell - 7) / 2, names[i], kTextColor);
    if (flat_columns)
      c.text(left + at + (cell - w) / 2 + 1, top - kCharHeight - 2, names[i], kTextColor);
    else
      c.text(left + at + (cell - 7) / 2, top - 4, names[i], kTextColor, 1, true);
  }
  c.write_png(path);
}

}  // namespace tg::cli
