// Folders of images by class, the layout torchvision's ImageFolder and Keras read:
//
//   DIR/train/<class>/*.png|jpg|jpeg|bmp   and   DIR/test/<class>/... (or val/)     ("split" layout)
//   DIR/<class>/*.png|jpg|jpeg|bmp, a seeded fraction per class held out as the test split   ("flat" layout)
//
// Classes are the sorted folder names. Images are decoded once (stb_image, in parallel on the pool), resized
// to one size and converted to gray or RGB, and kept as uint8 [N, C, H, W]; batches normalize them per
// channel.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/dataset.hpp"

namespace tg {

// What a scan of one folder of class folders found, before anything is decoded. Hidden files and folders
// (".name", and "__MACOSX" from zip files) are skipped without a word; sub-folders of a class folder are part
// of it (symbolic links followed, each real folder once, so a link loop ends).
struct ImageFolderScan {
  std::vector<std::string> class_names;  // the class folders' names, sorted
  std::vector<std::string> files;        // the images, by class, each class's in path order
  std::vector<int> labels;               // index into class_names, per file
  std::vector<std::string> not_images;   // files skipped: not .png/.jpg/.jpeg/.bmp, or outside a class folder
};
// tg::Error naming the folder when it is missing or not a folder, holds no class folder, or a class folder
// holds no image.
ImageFolderScan scan_image_folder(const std::string& root);

enum class FolderLayout { None, Split, Flat };
// Split when dir/train or dir/test is a folder (the test split: dir/test, else dir/val or dir/validation),
// else Flat when dir holds a folder (not hidden), else None.
FolderLayout image_folder_layout(const std::string& dir);

// The split layout's test folder: dir/test, else dir/val or dir/validation; tg::Error saying where to put the
// test images when there is none.
std::string image_folder_test_root(const std::string& dir);

struct ImageFolderOptions {
  std::size_t rows = 0, cols = 0;  // the size images are resized to; 0, 0: their own, when they all agree
  std::size_t channels =
      0;  // 1 or 3; 0: 3 when any file is a colour image (RGB or palette, by its header), else 1
  double val_split = 0;          // flat layout: the fraction of each class held out as Split::Test
  std::uint64_t seed = 1;        // of the held-out choice
  bool skip_bad_images = false;  // a corrupt or unreadable image is skipped (and counted), not an error
  std::size_t limit = 0;         // > 0: decode only the first `limit` examples (see keep_first)
  // The classes to label by: a test split takes its training set's (a class name's '/' matches a folder
  // name's ' ' or '_'). Empty: the folders found, at least two.
  std::vector<std::string> classes{};
  std::vector<float> mean{}, std{};  // one per channel, of pixels / 255; empty: this set's own statistics
  // Called while decoding with (images done, images in all), from the calling thread, every few hundred.
  std::function<void(std::size_t, std::size_t)> progress{};
  // Called once the split's class names, image size and channels are known (the size and channels from the
  // files' headers), before any image is decoded: a caller checks what it builds for them first (the command
  // line builds the model, so that a model-file error comes before minutes of decoding). If it throws, no
  // image is decoded.
  std::function<void(std::size_t channels, std::size_t rows, std::size_t cols,
                     const std::vector<std::string>& class_names)>
      before_decoding{};
};

class ImageFolder final : public ImageDataset {
 public:
  // The images of `split`: DIR/train or DIR/test (split layout), or the kept or held-out part of DIR's
  // classes (flat layout; with val_split 0, Train and Test are both all of them). tg::Error naming the file
  // or folder for every kind of bad input (see scan_image_folder, and: mixed sizes without rows and cols, a
  // class unknown to options.classes, a corrupt image without skip_bad_images, every image bad).
  ImageFolder(const std::string& dir, Split split, ImageFolderOptions options = {});

  std::size_t size() const override { return labels_.size(); }
  std::size_t channels() const override { return channels_; }
  std::size_t rows() const override { return rows_; }
  std::size_t cols() const override { return cols_; }
  int label(std::size_t i) const override { return labels_.at(i); }
  const std::uint8_t* pixels(std::size_t i) const override { return images_.data() + i * example_size(); }
  void normalized(std::size_t i, float* out) const override;
  std::vector<float> channel_mean() const override { return mean_; }
  std::vector<float> channel_std() const override { return std_; }
  // The order is round-robin over the classes (class 0's first image, class 1's first, ...), so the first n
  // examples keep the classes' proportions.
  void keep_first(std::size_t n) override;

  const std::vector<std::string>& class_names() const { return class_names_; }
  const std::string& file(std::size_t i) const { return files_.at(i); }
  std::vector<std::size_t> class_counts() const;
  const std::vector<std::string>& not_images() const { return not_images_; }
  const std::vector<std::string>& bad_images() const { return bad_images_; }  // skipped: "path: reason"
  // "found 5,000 images in 10 classes: airplane 500, automobile 500, ...", then what was skipped.
  std::string summary() const;

 private:
  // Decodes scan.files[chosen[i]] into example i (labelled labels[its class]) on the pool.
  void decode(const std::string& root, const ImageFolderScan& scan, const std::vector<std::size_t>& chosen,
              const std::vector<int>& labels, const ImageFolderOptions& options);

  std::vector<std::uint8_t> images_;  // [N, channels, rows, cols]
  std::vector<int> labels_;
  std::vector<std::string> files_, class_names_, not_images_, bad_images_;
  std::size_t rows_ = 0, cols_ = 0, channels_ = 0;
  bool classes_given_ = false;  // labelled by ImageFolderOptions::classes
  std::vector<float> mean_, std_;
};

// Where image folders are expected, for messages.
std::string image_folder_help(const std::string& dir);

}  // namespace tg
