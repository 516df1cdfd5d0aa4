// filters.png and mistakes.png, the pictures `tapegrad train` writes beside its checkpoint (pictures.hpp).
#include "pictures.hpp"

#include <algorithm>
#include <cstdint>

namespace tg::cli {

bool write_filters_png(Sequential& model, const std::string& path) {
  const Conv2D* conv = nullptr;
  for (std::size_t i = 0; i < model.size() && !conv; ++i) conv = dynamic_cast<const Conv2D*>(&model[i]);
  if (!conv) return false;
  const Array& w = conv->weight.value();  // [Cout, Cin, Kh, Kw]
  const std::size_t count = w.shape()[0], kh = w.shape()[2], kw = w.shape()[3], zoom = 8, gap = 2;
  const std::size_t per_row = std::min<std::size_t>(count, 8), rows = (count + per_row - 1) / per_row;
  const std::size_t width = per_row * (kw * zoom + gap) + gap, height = rows * (kh * zoom + gap) + gap;
  std::vector<std::uint8_t> img(width * height, 128);
  for (std::size_t f = 0; f < count; ++f) {
    const float* k = w.data() + f * w.shape()[1] * kh * kw;
    const auto [lo, hi] = std::minmax_element(k, k + kh * kw);
    const float range = std::max(*hi - *lo, 1e-12f);
    const std::size_t x0 = gap + (f % per_row) * (kw * zoom + gap),
                      y0 = gap + (f / per_row) * (kh * zoom + gap);
    for (std::size_t y = 0; y < kh * zoom; ++y)
      for (std::size_t x = 0; x < kw * zoom; ++x)
        img[(y0 + y) * width + x0 + x] =
            static_cast<std::uint8_t>(255.f * (k[(y / zoom) * kw + x / zoom] - *lo) / range);
  }
  write_png(path, img, width, height);
  return true;
}

// ---- mistakes.png

int MistakesLayout::cell_x(std::size_t m) const {
  return kMargin + static_cast<int>(m % kPerRow) * (cell_width + kGap);
}

int MistakesLayout::cell_y(std::size_t m) const {
  return kMargin + kCaptionHeight + static_cast<int>(m / kPerRow) * (cell_height + kGap);
}

MistakesLayout mistakes_layout(std::size_t image_rows, std::size_t image_cols, std::size_t mistakes) {
  MistakesLayout l;
  l.shown = std::min(mistakes, MistakesLayout::kMaxShown);
  const std::size_t side = std::max<std::size_t>({image_rows, image_cols, 1});
  const auto drawn = [&](std::size_t n) {
    if (side <= 64) return static_cast<int>(n * (64 / side));
    if (side <= 128) return static_cast<int>(n);
    return static_cast<int>(std::max<std::size_t>(1, n * 128 / side));
  };
  l.image_width = drawn(image_cols);
  l.image_height = drawn(image_rows);
  l.cell_width = std::max(l.image_width, Canvas::text_width("0123456789"));
  l.label_chars = static_cast<std::size_t>(l.cell_width / Canvas::text_width("0"));
  l.cell_height = l.image_height + MistakesLayout::kLabelGap + MistakesLayout::kLineHeight + 8;
  const auto per_row = static_cast<int>(std::min(l.shown, MistakesLayout::kPerRow));
  const auto rows = static_cast<int>((l.shown + MistakesLayout::kPerRow - 1) / MistakesLayout::kPerRow);
  l.width = 2 * MistakesLayout::kMargin +
            std::max(per_row * l.cell_width + std::max(per_row - 1, 0) * MistakesLayout::kGap,
                     Canvas::text_width(kMistakesCaption));
  l.height = 2 * MistakesLayout::kMargin + MistakesLayout::kCaptionHeight + rows * l.cell_height +
             std::max(rows - 1, 0) * MistakesLayout::kGap;
  return l;
}

Canvas mistakes_picture(const ImageDataset& test, const std::vector<Mistake>& mistakes,
                        const std::vector<std::string>& class_names) {
  if (mistakes.empty()) fail("mistakes_picture: no mistakes to draw");
  const std::size_t r = test.rows(), c = test.cols(), channels = test.channels();
  const MistakesLayout l = mistakes_layout(r, c, mistakes.size());
  const auto name = [&](int label) {
    const std::string text = label >= 0 && static_cast<std::size_t>(label) < class_names.size()
                                 ? class_names[static_cast<std::size_t>(label)]
                                 : std::to_string(label);
    return shorten(text, l.label_chars);
  };
  Canvas canvas(l.width, l.height);
  canvas.text(MistakesLayout::kMargin, MistakesLayout::kMargin, kMistakesCaption, kTextColor);
  for (std::size_t m = 0; m < l.shown; ++m) {
    const std::uint8_t* px = test.pixels(mistakes[m].index);  // planar [channels, r, c]
    const int x0 = l.image_x(m), y0 = l.cell_y(m);
    for (int y = 0; y < l.image_height; ++y) {
      const std::size_t sy = static_cast<std::size_t>(y) * r / static_cast<std::size_t>(l.image_height);
      for (int x = 0; x < l.image_width; ++x) {
        const std::size_t sx = static_cast<std::size_t>(x) * c / static_cast<std::size_t>(l.image_width);
        const auto at = [&](std::size_t ch) { return px[(ch * r + sy) * c + sx]; };
        canvas.set(x0 + x, y0 + y, channels >= 3 ? Rgb{at(0), at(1), at(2)} : Rgb{at(0), at(0), at(0)});
      }
    }
    canvas.text(l.cell_x(m), l.true_label_y(m), name(test.label(mistakes[m].index)), kTextColor);
    canvas.text(l.cell_x(m), l.predicted_label_y(m), name(mistakes[m].predicted), kMistakeColor);
  }
  return canvas;
}

bool write_mistakes_png(const ImageDataset& test, const std::vector<Mistake>& mistakes,
                        const std::vector<std::string>& class_names, const std::string& path) {
  if (mistakes.empty()) return false;
  mistakes_picture(test, mistakes, class_names).write_png(path);
  return true;
}

}  // namespace tg::cli
