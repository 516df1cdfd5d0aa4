#include "data/cifar10.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/base/error.hpp"
#include "data/idx.hpp"

namespace tg {
namespace {

const std::vector<std::string> kStandardClasses{"airplane", "automobile", "bird",  "cat",  "deer",
                                                "dog",      "frog",       "horse", "ship", "truck"};
constexpr int kTrainBatches = 5;  // data_batch_1.bin ... data_batch_5.bin

// The batch files of a split, checked to exist: the training batches present must run from 1 without a gap.
std::vector<std::string> batch_files(const std::string& dir, Split split) {
  const std::filesystem::path base(dir);
  if (split == Split::Test) {
    const std::string path = (base / "test_batch.bin").string();
    if (!std::filesystem::exists(path)) fail("CIFAR-10: cannot find ", path, ". ", cifar10_help(dir));
    return {path};
  }
  std::vector<std::string> files;
  int gap = 0;  // the first missing batch number, once one is missing
  for (int n = 1; n <= kTrainBatches; ++n) {
    const std::string path = (base / ("data_batch_" + std::to_string(n) + ".bin")).string();
    if (!std::filesystem::exists(path)) {
      if (gap == 0) gap = n;
      continue;
    }
    if (gap != 0) {
      fail("CIFAR-10: found ", path, " but not data_batch_", gap,
           ".bin: the training batches read are data_batch_1.bin, data_batch_2.bin, ... without a gap. ",
           cifar10_help(dir));
    }
    files.push_back(path);
  }
  if (files.empty()) {
    fail("CIFAR-10: cannot find ", (base / "data_batch_1.bin").string(), ". ", cifar10_help(dir));
  }
  return files;
}

}  // namespace

std::string cifar10_help(const std::string& dir) {
  return "Expected CIFAR-10's binary version in " + dir +
         ": data_batch_1.bin ... data_batch_5.bin, test_batch.bin and batches.meta.txt; download "
         "cifar-10-binary.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html and unpack it (tar xzf "
         "cifar-10-binary.tar.gz gives cifar-10-batches-bin/)";
}

CifarRecords parse_cifar10_batch(const std::vector<std::uint8_t>& bytes, const std::string& name,
                                 std::size_t classes) {
  if (bytes.empty()) {
    fail(name, ": empty file; expected CIFAR-10 records of ", kCifarRecordBytes,
         " bytes (1 label byte, then 1024 R, 1024 G, 1024 B)");
  }
  if (bytes.size() % kCifarRecordBytes != 0) {
    fail(name, ": ", bytes.size(), " bytes is not a whole number of CIFAR-10 records of ", kCifarRecordBytes,
         " bytes (1 label byte, then 1024 R, 1024 G, 1024 B): ", bytes.size() / kCifarRecordBytes,
         " records and ", bytes.size() % kCifarRecordBytes, " bytes left over (a truncated download?)");
  }
  const std::size_t n = bytes.size() / kCifarRecordBytes;
  CifarRecords out;
  out.labels.resize(n);
  out.images.resize(n * kCifarImageBytes);
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint8_t* record = bytes.data() + i * kCifarRecordBytes;
    if (record[0] >= classes) {
      fail(name, ": record ", i, " has label ", int(record[0]), ", expected 0..", classes - 1, " (", classes,
           " classes)");
    }
    out.labels[i] = record[0];
    std::copy(record + 1, record + kCifarRecordBytes, out.images.begin() + i * kCifarImageBytes);
  }
  return out;
}

std::vector<std::string> parse_cifar10_class_names(const std::string& text, const std::string& name) {
  std::vector<std::string> names;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
      line.pop_back();
    if (!line.empty()) names.push_back(std::move(line));
    start = end + 1;
  }
  if (names.empty()) fail(name, ": expected class names, one per line; the file has none");
  if (names.size() > 256) {
    fail(name, ": expected at most 256 class names (a label is one byte), got ", names.size());
  }
  return names;
}

std::vector<std::string> cifar10_class_names(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / "batches.meta.txt").string();
  if (!std::filesystem::exists(path)) return kStandardClasses;
  const std::vector<std::uint8_t> bytes = read_file_bytes(path, std::size_t{1} << 20);
  return parse_cifar10_class_names(std::string(bytes.begin(), bytes.end()), path);
}

CIFAR10::CIFAR10(const std::string& dir, Split split) {
  read(dir, split);
  channel_statistics(*this, mean_, std_);
  for (float& s : std_) s = std::max(s, 1e-6f);  // a constant channel (a synthetic set) must not divide by 0
}

CIFAR10::CIFAR10(const std::string& dir, Split split, std::vector<float> mean, std::vector<float> std)
    : mean_(std::move(mean)), std_(std::move(std)) {
  if (mean_.size() != 3 || std_.size() != 3) {
    fail("CIFAR-10: normalization needs 3 means and 3 stds (R, G, B), got ", mean_.size(), " and ",
         std_.size());
  }
  for (float s : std_)
    if (!(s > 0.f)) fail("CIFAR-10: normalization std must be > 0, got ", s);
  read(dir, split);
}

void CIFAR10::read(const std::string& dir, Split split) {
  class_names_ = cifar10_class_names(dir);
  files_ = batch_files(dir, split);
  for (const std::string& path : files_) {
    CifarRecords records = parse_cifar10_batch(read_file_bytes(path), path, class_names_.size());
    images_.insert(images_.end(), records.images.begin(), records.images.end());
    labels_.insert(labels_.end(), records.labels.begin(), records.labels.end());
  }
}

void CIFAR10::normalized(std::size_t i, float* out) const {
  normalize_planes(pixels(i), 3, kCifarSide * kCifarSide, mean_.data(), std_.data(), out);
}

void CIFAR10::keep_first(std::size_t n) {
  if (n >= size()) return;
  labels_.resize(n);
  images_.resize(n * kCifarImageBytes);
}

void channel_statistics(const ImageDataset& data, std::vector<float>& mean, std::vector<float>& stddev) {
  const std::size_t channels = data.channels(), plane = data.rows() * data.cols();
  mean.assign(channels, 0.f);
  stddev.assign(channels, 0.f);
  if (data.size() == 0 || plane == 0) return;
  const double count = static_cast<double>(data.size()) * static_cast<double>(plane);
  for (std::size_t c = 0; c < channels; ++c) {
    double sum = 0, sum_sq = 0;  // of bytes: exact in double for any data set that fits in memory
    for (std::size_t i = 0; i < data.size(); ++i) {
      const std::uint8_t* p = data.pixels(i) + c * plane;
      for (std::size_t k = 0; k < plane; ++k) {
        sum += p[k];
        sum_sq += static_cast<double>(p[k]) * p[k];
      }
    }
    const double m = sum / count, var = std::max(sum_sq / count - m * m, 0.0);
    mean[c] = static_cast<float>(m / 255.0);
    stddev[c] = static_cast<float>(std::sqrt(var) / 255.0);
  }
}

}  // namespace tg
