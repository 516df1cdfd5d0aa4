#include "data/dataloader.hpp"

#include <numeric>

#include "core/base/error.hpp"
#include "core/runtime/random.hpp"
#include "core/runtime/threads.hpp"

namespace tg {
namespace {

// splitmix64's finalizer: nearby inputs give unrelated outputs.
std::uint64_t mix(std::uint64_t x) {
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// The seed of the augmentation of the example at `position` in epoch `epoch`'s order: a function of those
// alone, whichever rank, thread or batch loads it. The constant keeps it apart from the shuffle's seeds.
std::uint64_t augment_seed(std::uint64_t seed, std::size_t epoch, std::size_t position) {
  return mix(mix(mix(seed ^ 0x61756736656E7473ull) + epoch) + position);
}

}  // namespace

DataLoader::DataLoader(const ImageDataset& data, DataLoaderOptions options)
    : data_(&data), options_(options) {
  if (options.batch_size == 0) fail("DataLoader: batch_size must be >= 1, got 0");
  if (options.world_size < 1) fail("DataLoader: world_size must be >= 1, got ", options.world_size);
  if (options.rank < 0 || options.rank >= options.world_size) {
    fail("DataLoader: rank must be in [0, ", options.world_size, "), got ", options.rank);
  }
  if (!options.augment.none()) {
    const std::vector<float> mean = data.channel_mean(), std = data.channel_std();
    if (mean.size() != data.channels() || std.size() != data.channels()) {
      fail("DataLoader: augmenting needs one mean and one std per channel; the data set has ",
           data.channels(), " channels, ", mean.size(), " means and ", std.size(), " stds");
    }
    for (std::size_t c = 0; c < mean.size(); ++c) {  // the arithmetic of normalized()
      scale_.push_back(1.f / (255.f * std[c]));
      offset_.push_back(-mean[c] / std[c]);
    }
  }
}

std::size_t DataLoader::num_batches() const {
  const std::size_t n = data_->size(), b = global_batch_size();
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

std::vector<std::size_t> DataLoader::order(std::size_t epoch) const {
  std::vector<std::size_t> idx(data_->size());
  std::iota(idx.begin(), idx.end(), std::size_t{0});
  if (options_.shuffle) {  // Fisher-Yates with a generator seeded by (seed, epoch)
    Generator gen(options_.seed * 0x9E3779B97F4A7C15ull + epoch);
    for (std::size_t i = idx.size(); i > 1; --i) std::swap(idx[i - 1], idx[gen.below(i)]);
  }
  return idx;
}

DataLoader::Iterator DataLoader::begin() { return begin_at(0); }

DataLoader::Iterator DataLoader::begin_at(std::size_t first_batch) {
  order_epoch_ = epoch_;
  order_ = order(epoch_++);
  first_batch = std::min(first_batch, num_batches());
  if (first_batch < num_batches()) load(first_batch);
  return Iterator(this, first_batch);
}

DataLoader::Iterator& DataLoader::Iterator::operator++() {
  if (++index_ < loader_->num_batches()) loader_->load(index_);
  return *this;
}

void DataLoader::load(std::size_t batch_index) {
  // This rank's slice of global batch `batch_index` (the whole batch when not sharded); may be empty.
  const std::size_t rank_offset = static_cast<std::size_t>(options_.rank) * options_.batch_size;
  const std::size_t start = std::min(batch_index * global_batch_size() + rank_offset, data_->size());
  const std::size_t count = std::min(options_.batch_size, data_->size() - start);
  const std::size_t example_size = data_->example_size();
  Array images = Array::from_shape({count, data_->channels(), data_->rows(), data_->cols()});
  batch_.labels.resize(count);
  const Augmentation& augment = options_.augment;
  // Each example writes its own slice; a chunk of at least kElementGrain floats is worth a worker.
  parallel_for(
      count,
      [&](std::size_t begin, std::size_t end) {
        for (std::size_t i = begin; i < end; ++i) {
          const std::size_t position = start + i, example = order_[position];
          float* out = images.data() + i * example_size;
          if (augment.none()) {
            data_->normalized(example, out);
          } else {
            Generator gen(augment_seed(options_.seed, order_epoch_, position));
            augment_normalized(data_->pixels(example), data_->channels(), data_->rows(), data_->cols(),
                               scale_.data(), offset_.data(), augment.crop_padding,
                               draw_augmentation(augment, gen, data_->rows(), data_->cols()), out);
          }
          batch_.labels[i] = data_->label(example);
        }
      },
      std::max<std::size_t>(1, kElementGrain / std::max<std::size_t>(example_size, 1)));
  batch_.images = Tensor(std::move(images));
}

}  // namespace tg
