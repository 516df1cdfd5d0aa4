// CIFAR-10, binary version (cifar-10-binary.tar.gz, unpacked to cifar-10-batches-bin/): 32x32 colour images
// kept as bytes [N, 3, 32, 32], normalized per channel when batched.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.hpp"

namespace tg {

inline constexpr std::size_t kCifarSide = 32;
inline constexpr std::size_t kCifarImageBytes = 3 * kCifarSide * kCifarSide;  // 1024 R, 1024 G, 1024 B
inline constexpr std::size_t kCifarRecordBytes = 1 + kCifarImageBytes;        // the label byte first

// The records of one batch file: images [N, 3, 32, 32] and labels [N].
struct CifarRecords {
  std::vector<std::uint8_t> images;
  std::vector<int> labels;
};
// Parses a batch file's bytes (`name` for messages): tg::Error when empty, when the length is not a multiple
// of 3073, or when a label is >= `classes`.
CifarRecords parse_cifar10_batch(const std::vector<std::uint8_t>& bytes, const std::string& name,
                                 std::size_t classes = 10);

// Class names, one per line (batches.meta.txt); blank lines and trailing spaces are dropped. tg::Error
// naming the file when there is no name, or more than 256 (a label is one byte).
std::vector<std::string> parse_cifar10_class_names(const std::string& text, const std::string& name);
// dir/batches.meta.txt's names, or the standard ten (airplane ... truck) when the file is absent.
std::vector<std::string> cifar10_class_names(const std::string& dir);

class CIFAR10 final : public ImageDataset {
 public:
  // Reads dir/data_batch_1.bin ... data_batch_5.bin (Train: those present, consecutive from 1) or
  // dir/test_batch.bin (Test), and the class names. Normalizes with the mean and std per channel of this
  // set's own pixels / 255 (meant for the training set; give a test set the training set's).
  CIFAR10(const std::string& dir, Split split);
  // The same with a given normalization: three means and three stds (> 0).
  CIFAR10(const std::string& dir, Split split, std::vector<float> mean, std::vector<float> std);

  std::size_t size() const override { return labels_.size(); }
  std::size_t channels() const override { return 3; }
  std::size_t rows() const override { return kCifarSide; }
  std::size_t cols() const override { return kCifarSide; }
  int label(std::size_t i) const override { return labels_.at(i); }
  const std::uint8_t* pixels(std::size_t i) const override { return images_.data() + i * kCifarImageBytes; }
  void normalized(std::size_t i, float* out) const override;
  std::vector<float> channel_mean() const override { return mean_; }
  std::vector<float> channel_std() const override { return std_; }
  void keep_first(std::size_t n) override;

  const std::vector<std::string>& class_names() const { return class_names_; }
  const std::vector<std::string>& files() const { return files_; }  // the batch files read, in order

 private:
  void read(const std::string& dir, Split split);  // the class names, then the batch files

  std::vector<std::uint8_t> images_;  // [N, 3, 32, 32]
  std::vector<int> labels_;           // [N], each < class_names_.size()
  std::vector<std::string> class_names_, files_;
  std::vector<float> mean_, std_;  // per channel, of pixels / 255
};

// Per-channel mean and (population) standard deviation of pixels / 255 over a data set, summed in double.
void channel_statistics(const ImageDataset& data, std::vector<float>& mean, std::vector<float>& stddev);

// Where CIFAR-10's files are expected, for messages: the names looked for and how to get them.
std::string cifar10_help(const std::string& dir);

}  // namespace tg
