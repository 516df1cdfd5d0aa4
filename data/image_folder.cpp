// ImageFolder: a folder of images by class (scanned by image_folder_scan.cpp), labelled, split, checked
// against the model (before_decoding) and decoded once into bytes, in the order the constructor runs these
// steps.
#include "data/image_folder.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <utility>

#include "core/base/error.hpp"
#include "core/base/text.hpp"
#include "core/runtime/random.hpp"
#include "core/runtime/threads.hpp"
#include "data/cifar10.hpp"
#include "data/idx.hpp"
#include "data/image.hpp"

namespace tg {
namespace fs = std::filesystem;
namespace {

// A class folder's name for a class name: equal, or with each '/' (which no folder name can hold) written as
// ' ' or '_' ("T-shirt/top" is the folder "T-shirt top" or "T-shirt_top").
bool names_class(const std::string& folder, const std::string& name) {
  if (folder == name) return true;
  if (name.find('/') == std::string::npos || folder.size() != name.size()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const bool same = folder[i] == name[i] || (name[i] == '/' && (folder[i] == ' ' || folder[i] == '_'));
    if (!same) return false;
  }
  return true;
}

// Enough of a file to read its header from; the whole file when the header is not in the first 64 KiB (a
// JPEG's size can follow a large EXIF block).
ImageHeader header_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open the file");
  std::vector<std::uint8_t> bytes(std::size_t{1} << 16);
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  bytes.resize(static_cast<std::size_t>(in.gcount()));
  if (bytes.size() == std::size_t{1} << 16) {
    try {
      return read_image_header(bytes, path);
    } catch (const Error&) {
      bytes = read_file_bytes(path, std::size_t{256} << 20);
    }
  }
  return read_image_header(bytes, path);
}

// Runs body(i) for i in [0, n) on the pool in chunks, calling progress after each; body's tg::Error becomes
// errors[i] ("path: reason") instead of stopping the others.
void for_each_file(std::size_t n, const std::function<void(std::size_t)>& body,
                   std::vector<std::string>& errors,
                   const std::function<void(std::size_t, std::size_t)>& progress) {
  errors.assign(n, {});
  constexpr std::size_t kChunk = 512;
  for (std::size_t begin = 0; begin < n; begin += kChunk) {
    const std::size_t end = std::min(n, begin + kChunk);
    parallel_for(end - begin, [&](std::size_t lo, std::size_t hi) {
      for (std::size_t i = begin + lo; i < begin + hi; ++i) {
        try {
          body(i);
        } catch (const Error& e) {  // a bad file; anything else (out of memory) stops the reading
          errors[i] = e.what();
        }
      }
    });
    if (progress) progress(end, n);
  }
}

}  // namespace

namespace {

// Each scanned class's label: its index among the given classes (a test split takes its training set's; a
// class they do not have is an error), else among the folders found (at least two).
std::vector<int> label_classes(const ImageFolderScan& scan, const std::vector<std::string>& given,
                               const std::string& root) {
  std::vector<int> labels(scan.class_names.size());
  if (given.empty()) {
    if (scan.class_names.size() < 2) {
      fail(root, ": found one class folder ('", scan.class_names[0],
           "'); a classifier needs at least two, one folder per class");
    }
    for (std::size_t c = 0; c < labels.size(); ++c) labels[c] = static_cast<int>(c);
    return labels;
  }
  std::string unknown;
  std::size_t unknown_count = 0;
  for (std::size_t c = 0; c < labels.size(); ++c) {
    const auto at = std::find_if(given.begin(), given.end(), [&](const std::string& name) {
      return names_class(scan.class_names[c], name);
    });
    if (at == given.end()) unknown += (unknown_count++ ? ", " : "") + scan.class_names[c];
    labels[c] = static_cast<int>(at - given.begin());
  }
  if (unknown_count > 0) {
    std::string known;
    for (const std::string& name : given) known += (known.empty() ? "" : ", ") + name;
    fail(root, " has ", scan.class_names.size(), " classes, ", unknown_count,
         " of them unknown to the model's ", given.size(), " (", known, "): ", unknown);
  }
  return labels;
}

// The scan's files this split takes (indices): all, or with val_split > 0 a seeded share of each class (Test)
// or the rest (Train); round-robin over the classes, so that the first n keep the classes' proportions.
std::vector<std::size_t> choose_files(const ImageFolderScan& scan, Split split, double val_split,
                                      std::uint64_t seed) {
  std::vector<std::vector<std::size_t>> by_class(scan.class_names.size());
  for (std::size_t i = 0; i < scan.files.size(); ++i)
    by_class[static_cast<std::size_t>(scan.labels[i])].push_back(i);
  if (val_split > 0) {
    for (std::size_t c = 0; c < by_class.size(); ++c) {
      std::vector<std::size_t>& files = by_class[c];
      const std::size_t n = files.size();
      // At least one held out and one kept of a class with two or more images.
      const std::size_t held =
          n < 2 ? 0 : std::clamp<std::size_t>(static_cast<std::size_t>(std::lround(val_split * n)), 1, n - 1);
      Generator gen(seed * 0x9E3779B97F4A7C15ull + 0x5EED + c);
      for (std::size_t i = n; i > 1; --i) std::swap(files[i - 1], files[gen.below(i)]);
      if (split == Split::Test)
        files.resize(held);
      else
        files.erase(files.begin(), files.begin() + static_cast<std::ptrdiff_t>(held));
      std::sort(files.begin(), files.end());
    }
  }
  std::vector<std::size_t> chosen;
  for (std::size_t k = 0; chosen.size() < scan.files.size(); ++k) {
    const std::size_t before = chosen.size();
    for (const auto& files : by_class)
      if (k < files.size()) chosen.push_back(files[k]);
    if (chosen.size() == before) break;
  }
  return chosen;
}

// The size and channels of the scanned images from their headers: the size they all have (else an error that
// asks for --image-size), 3 channels when any file is colour. Only the ones not given (0) are set.
void find_size_and_channels(const std::vector<std::string>& files, const std::string& root, std::size_t& rows,
                            std::size_t& cols, std::size_t& channels) {
  std::vector<ImageHeader> headers(files.size());
  std::vector<std::string> errors;
  for_each_file(files.size(), [&](std::size_t i) { headers[i] = header_of(files[i]); }, errors, {});
  std::map<std::pair<std::size_t, std::size_t>, std::size_t> sizes;  // (rows, cols) -> images
  std::size_t first = files.size(), colour = 0;
  for (std::size_t i = 0; i < files.size(); ++i) {
    if (!errors[i].empty()) continue;  // decoding reports it
    ++sizes[{headers[i].rows, headers[i].cols}];
    colour += headers[i].channels >= 3;
    first = std::min(first, i);
  }
  if (channels == 0) channels = colour > 0 ? 3 : 1;
  if (rows != 0) return;
  if (sizes.size() > 1) {
    std::string listed;
    std::size_t shown = 0;
    for (const auto& [size, count] : sizes) {
      if (shown++ == 4) {
        listed += ", ...";
        break;
      }
      listed += (listed.empty() ? "" : ", ") + std::to_string(size.first) + "x" +
                std::to_string(size.second) + " (" + with_commas(count) + ")";
    }
    fail(root, ": the images have ", sizes.size(), " different sizes (", listed,
         "); choose one with --image-size HxW (e.g. --image-size ", headers[first].rows, "x",
         headers[first].cols, "), every image is resized to it");
  }
  // Every header unreadable: any size will do, decoding reports the files.
  std::tie(rows, cols) = sizes.empty() ? std::pair<std::size_t, std::size_t>{1, 1} : sizes.begin()->first;
}

}  // namespace

ImageFolder::ImageFolder(const std::string& dir, Split split, ImageFolderOptions options)
    : rows_(options.rows), cols_(options.cols), channels_(options.channels) {
  const FolderLayout layout = image_folder_layout(dir);
  if (layout == FolderLayout::None) fail(dir, ": not a folder of images by class; ", image_folder_help(dir));
  if (options.val_split < 0 || options.val_split >= 1)
    fail(dir, ": the held-out fraction must be in [0, 1), got ", options.val_split);
  if (layout == FolderLayout::Split && options.val_split > 0) {
    fail(dir,
         " has train/ and test/ folders, so the test images are given; --val-split is for one folder of "
         "classes");
  }
  if (channels_ != 0 && channels_ != 1 && channels_ != 3)
    fail(dir, ": images can have 1 (gray) or 3 (RGB) channels, not ", channels_);
  if ((rows_ == 0) != (cols_ == 0)) fail(dir, ": image size ", rows_, "x", cols_, " is incomplete");
  const std::string root = layout == FolderLayout::Flat ? dir
                           : split == Split::Train      ? (fs::path(dir) / "train").string()
                                                        : image_folder_test_root(dir);
  const ImageFolderScan scan = scan_image_folder(root);
  not_images_ = scan.not_images;
  const std::vector<int> labels = label_classes(scan, options.classes, root);
  class_names_ = options.classes.empty() ? scan.class_names : options.classes;
  classes_given_ = !options.classes.empty();
  std::vector<std::size_t> chosen = choose_files(scan, split, options.val_split, options.seed);
  if (chosen.empty())
    fail(root, ": no images in the ", split == Split::Train ? "training" : "test", " split");
  if (options.limit > 0 && options.limit < chosen.size()) chosen.resize(options.limit);
  // Both splits of a flat folder have the size and channels of all its images, so that they agree.
  if (rows_ == 0 || channels_ == 0) find_size_and_channels(scan.files, root, rows_, cols_, channels_);
  if (options.before_decoding) options.before_decoding(channels_, rows_, cols_, class_names_);
  decode(root, scan, chosen, labels, options);
  if (options.mean.empty() && options.std.empty()) {
    channel_statistics(*this, mean_, std_);
    for (float& s : std_) s = std::max(s, 1e-3f);  // a constant channel: no division by zero
  } else {
    if (options.mean.size() != channels_ || options.std.size() != channels_)
      fail(dir, ": ", channels_, "-channel images need ", channels_, " means and stds, got ",
           options.mean.size(), " and ", options.std.size());
    for (float s : options.std)
      if (!(s > 0)) fail(dir, ": a normalization std must be > 0, got ", s);
    mean_ = std::move(options.mean);
    std_ = std::move(options.std);
  }
}

void ImageFolder::decode(const std::string& root, const ImageFolderScan& scan,
                         const std::vector<std::size_t>& chosen, const std::vector<int>& labels,
                         const ImageFolderOptions& options) {
  const std::size_t n = chosen.size(), example = channels_ * rows_ * cols_;
  try {
    images_.assign(n * example, 0);
  } catch (const std::bad_alloc&) {
    fail(root, ": ", n, " images of ", channels_, "x", rows_, "x", cols_, " need ",
         static_cast<double>(n * example) / (1 << 30),
         " GiB of memory, more than there is; choose a smaller --image-size (or --limit N)");
  }
  std::vector<std::string> errors;
  for_each_file(
      n,
      [&](std::size_t i) {
        const std::string& path = scan.files[chosen[i]];
        const std::vector<std::uint8_t> pixels =
            decode_image(read_file_bytes(path, std::size_t{256} << 20), rows_, cols_, channels_, path);
        std::copy(pixels.begin(), pixels.end(), images_.begin() + static_cast<std::ptrdiff_t>(i * example));
      },
      errors, options.progress);
  // The good ones, moved together; the bad ones an error, or with skip_bad_images counted.
  std::size_t kept = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (!errors[i].empty()) {
      if (!options.skip_bad_images) {
        const std::size_t bad = n - static_cast<std::size_t>(std::count(errors.begin(), errors.end(), ""));
        fail(errors[i], bad > 1 ? " (and " + std::to_string(bad - 1) + " more bad image(s))" : "",
             "; fix or remove it, or pass --skip-bad-images to train without it");
      }
      bad_images_.push_back(errors[i]);
      continue;
    }
    if (kept != i) {
      std::copy_n(images_.begin() + static_cast<std::ptrdiff_t>(i * example), example,
                  images_.begin() + static_cast<std::ptrdiff_t>(kept * example));
    }
    files_.push_back(scan.files[chosen[i]]);
    labels_.push_back(labels[static_cast<std::size_t>(scan.labels[chosen[i]])]);
    ++kept;
  }
  images_.resize(kept * example);
  images_.shrink_to_fit();
  if (kept == 0) fail(root, ": none of its ", n, " images could be read (first: ", bad_images_.front(), ")");
}

void ImageFolder::normalized(std::size_t i, float* out) const {
  normalize_planes(pixels(i), channels_, rows_ * cols_, mean_.data(), std_.data(), out);
}

void ImageFolder::keep_first(std::size_t n) {
  if (n >= size()) return;
  labels_.resize(n);
  files_.resize(n);
  images_.resize(n * example_size());
}

std::vector<std::size_t> ImageFolder::class_counts() const {
  std::vector<std::size_t> counts(class_names_.size(), 0);
  for (int label : labels_) ++counts[static_cast<std::size_t>(label)];
  return counts;
}

std::string ImageFolder::summary() const {
  std::ostringstream out;
  const std::vector<std::size_t> counts = class_counts();
  // A split labelled by given classes may lack some of them: only the ones it has are listed.
  std::vector<std::size_t> listed;
  for (std::size_t c = 0; c < counts.size(); ++c)
    if (counts[c] > 0 || !classes_given_) listed.push_back(c);
  out << "found " << with_commas(size()) << " images in " << listed.size();
  if (listed.size() < class_names_.size()) out << " of the model's " << class_names_.size();
  out << " classes: ";
  for (std::size_t i = 0; i < listed.size(); ++i) {
    if (i == 12 && listed.size() > 13) {
      out << ", ... (" << listed.size() - 12 << " more)";
      break;
    }
    out << (i ? ", " : "") << class_names_[listed[i]] << ' ' << with_commas(counts[listed[i]]);
  }
  out << "; " << rows_ << "x" << cols_ << (channels_ == 3 ? " RGB" : " gray");
  if (!not_images_.empty()) {
    out << "; skipped " << not_images_.size() << " file(s) that are not images or not in a class folder ("
        << not_images_.front() << (not_images_.size() > 1 ? ", ..." : "") << ")";
  }
  if (!bad_images_.empty()) {
    out << "; skipped " << bad_images_.size()
        << " bad image(s) (--skip-bad-images; first: " << bad_images_.front() << ")";
  }
  return out.str();
}

}  // namespace tg
