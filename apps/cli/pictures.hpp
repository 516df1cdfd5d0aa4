// The pictures `tapegrad train` writes beside its checkpoint: filters.png (the first conv layer's filters)
// and mistakes.png (test images it got wrong, each named with its true class and the class it was taken for).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "charts.hpp"
#include "evaluation.hpp"

namespace tg::cli {

// The first conv layer's filters (input channel 0), each scaled to 0..255 and enlarged 8x, in rows of 8.
// Returns false (and writes nothing) when the model has no Conv2D.
bool write_filters_png(Sequential& model, const std::string& path);

// Where mistakes.png puts things. Up to 100 mistakes, 10 per row, in test order, below a caption line. A cell
// is the image in its own colours (enlarged by a whole factor to about 64 pixels when smaller, e.g. 28x28 to
// 56x56; shrunk to 128 pixels when larger), over two lines of text: the true class (dark) and the class it
// was taken for (red), each shortened to the cell's `label_chars` characters (at least 10).
struct MistakesLayout {
  static constexpr int kMargin = 8, kGap = 8, kCaptionHeight = 14, kLineHeight = 9, kLabelGap = 3;
  static constexpr std::size_t kMaxShown = 100, kPerRow = 10;
  int image_width = 0, image_height = 0;  // of an image as drawn
  int cell_width = 0, cell_height = 0, width = 0, height = 0;
  std::size_t shown = 0, label_chars = 0;
  // The top-left corner of cell m: its image is centred at the top, its two label lines start at its left.
  int cell_x(std::size_t m) const;
  int cell_y(std::size_t m) const;
  int image_x(std::size_t m) const { return cell_x(m) + (cell_width - image_width) / 2; }
  int true_label_y(std::size_t m) const { return cell_y(m) + image_height + kLabelGap; }
  int predicted_label_y(std::size_t m) const { return true_label_y(m) + kLineHeight; }
};
MistakesLayout mistakes_layout(std::size_t image_rows, std::size_t image_cols, std::size_t mistakes);

inline constexpr Rgb kMistakeColor{200, 24, 24};  // the class an image was taken for
inline constexpr const char* kMistakesCaption =
    "each: its true class, then in red the class it was taken for";

// mistakes.png's picture (see MistakesLayout); a class beyond `class_names` is named by its number.
// tg::Error when there is no mistake to show.
Canvas mistakes_picture(const ImageDataset& test, const std::vector<Mistake>& mistakes,
                        const std::vector<std::string>& class_names);
// Writes it to `path`; returns false (and writes nothing) when there is no mistake.
bool write_mistakes_png(const ImageDataset& test, const std::vector<Mistake>& mistakes,
                        const std::vector<std::string>& class_names, const std::string& path);

}  // namespace tg::cli
