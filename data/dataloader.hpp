// Batches of a data set, in a seed-determined order: same seed, same batches.
// Sharded for data-parallel training (world_size > 1): the epoch order is cut into global batches of
// batch_size * world_size examples, and rank r gets slice [r * batch_size, (r + 1) * batch_size) of each, so
// N ranks with batch B see, together, exactly the batches of one process with batch N * B. Every rank gets
// the same number of batches (num_batches()); in a short last global batch a rank's slice may be shorter
// than batch_size, or empty (0 images, no labels). See tg::distributed::allreduce_gradients.
// With augmentation (data/augment.hpp), the example at position k of epoch e's order is augmented with a
// generator seeded by (seed, e, k) alone: the batches are the same for any thread count, any sharding and
// after begin_at. A batch is assembled on the pool (tg::parallel_for over its examples).
#pragma once

#include <cstdint>
#include <vector>

#include "core/autograd/tensor.hpp"
#include "data/augment.hpp"
#include "data/dataset.hpp"

namespace tg {

struct Batch {
  Tensor images;            // [B, C, rows, cols], normalized
  std::vector<int> labels;  // B labels
};

struct DataLoaderOptions {
  std::size_t batch_size = 64;
  bool shuffle = true;
  std::uint64_t seed = 1;
  bool drop_last = false;     // drop a last batch smaller than batch_size (sharded: a last global batch)
  int rank = 0;               // this process's shard, in [0, world_size)
  int world_size = 1;         // number of shards; batch_size is per shard
  Augmentation augment = {};  // none by default (flips are wrong for digits)
};

class DataLoader {
 public:
  DataLoader(const ImageDataset& data, DataLoaderOptions options = {});

  // Each begin() starts the next epoch; with shuffle, epoch e's order depends only on (seed, e).
  class Iterator {
   public:
    const Batch& operator*() const { return loader_->batch_; }
    const Batch* operator->() const { return &loader_->batch_; }
    Iterator& operator++();
    bool operator==(const Iterator& other) const { return index_ == other.index_; }

   private:
    friend class DataLoader;
    Iterator(DataLoader* loader, std::size_t index) : loader_(loader), index_(index) {}
    DataLoader* loader_;
    std::size_t index_;
  };
  Iterator begin();
  // begin() that skips the epoch's first `first_batch` batches (resuming mid-epoch: the same batches follow).
  Iterator begin_at(std::size_t first_batch);
  Iterator end() { return Iterator(this, num_batches()); }

  // Batches per epoch; sharded, the number of global batches (the same on every rank).
  std::size_t num_batches() const;
  // batch_size * world_size: the examples of one step over all ranks.
  std::size_t global_batch_size() const {
    return options_.batch_size * static_cast<std::size_t>(options_.world_size);
  }
  std::size_t epoch() const { return epoch_; }
  void set_epoch(std::size_t epoch) { epoch_ = epoch; }  // the epoch the next begin() starts
  // The example order of an epoch (a permutation when shuffling).
  std::vector<std::size_t> order(std::size_t epoch) const;

 private:
  void load(std::size_t batch_index);
  const ImageDataset* data_;
  DataLoaderOptions options_;
  std::size_t epoch_ = 0;
  std::size_t order_epoch_ = 0;  // the epoch of order_
  std::vector<std::size_t> order_;
  std::vector<float> scale_, offset_;  // augmenting: per channel, normalized = pixel * scale + offset
  Batch batch_;
};

}  // namespace tg
