#include "data/dataloader.hpp"

#include <numeric>

#include "core/autograd/error.hpp"
#include "core/runtime/random.hpp"

namespace tg {

DataLoader::DataLoader(const ImageDataset& data, DataLoaderOptions options)
    : data_(&data), options_(options) {
  if (options.batch_size == 0) fail("DataLoader: batch_size must be >= 1, got 0");
  if (options.world_size < 1) fail("DataLoader: world_size must be >= 1, got ", options.world_size);
  if (options.rank < 0 || options.rank >= options.world_size) {
    fail("DataLoader: rank must be in [0, ", options.world_size, "), got ", options.rank);
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
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t example = order_[start + i];
    data_->normalized(example, images.data() + i * example_size);
    batch_.labels[i] = data_->label(example);
  }
  batch_.images = Tensor(std::move(images));
}

}  // namespace tg
