// DataLoader (data/dataloader.hpp): every example once per epoch in a seed-determined order, drop_last,
// sharding over ranks (rank, world_size) that needs no mpirun, and augmented batches that depend on the seed
// alone (not on threads, ranks or resuming). The multi-process tests are in tests/mpi/; what augmentation
// does to an image, in test_augment.cpp.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <vector>

#include "data/cifar_files.hpp"
#include "data/idx_files.hpp"
#include "tapegrad.hpp"
#include "test_util.hpp"

namespace fs = std::filesystem;
using namespace test_util;

namespace {

// The batches of one epoch as (flat image values, labels).
struct EpochBatches {
  std::vector<std::vector<float>> images;
  std::vector<std::vector<int>> labels;
};
EpochBatches one_epoch(tg::DataLoader& loader) {
  EpochBatches e;
  for (const tg::Batch& b : loader) {
    e.images.emplace_back(b.images.value().begin(), b.images.value().end());
    e.labels.push_back(b.labels);
    CHECK(b.images.shape()[0] == b.labels.size());
  }
  return e;
}

}  // namespace

TEST_CASE("DataLoader covers every example once per epoch, in a seed-determined order") {
  TempDir dir;
  write_tiny_mnist(dir, "train", 10, false);
  tg::MNIST data(dir.path.string(), tg::Split::Train);
  tg::DataLoader a(data, {.batch_size = 4, .shuffle = true, .seed = 7});
  tg::DataLoader b(data, {.batch_size = 4, .shuffle = true, .seed = 7});
  CHECK(a.num_batches() == 3);
  std::vector<int> first_epoch;
  std::set<float> pixels_seen;
  std::size_t batches = 0;
  for (const tg::Batch& batch : a) {
    ++batches;
    CHECK(batch.images.shape()[1] == 1);
    CHECK(batch.images.shape()[2] == 2);
    for (std::size_t i = 0; i < batch.labels.size(); ++i) {
      first_epoch.push_back(batch.labels[i]);
      pixels_seen.insert(batch.images.value()(i, 0, 0, 0));
    }
  }
  CHECK(batches == 3);
  CHECK(pixels_seen.size() == 10);  // each of the 10 distinct images once
  std::vector<int> again;
  for (const tg::Batch& batch : b) again.insert(again.end(), batch.labels.begin(), batch.labels.end());
  CHECK(again == first_epoch);
  CHECK(a.order(0) != a.order(1));  // a new order each epoch
  CHECK(a.order(1) == b.order(1));
}

TEST_CASE("DataLoader drop_last and sequential order") {
  TempDir dir;
  write_tiny_mnist(dir, "train", 10, false);
  tg::MNIST data(dir.path.string(), tg::Split::Train);
  tg::DataLoader seq(data, {.batch_size = 4, .shuffle = false, .drop_last = true});
  CHECK(seq.num_batches() == 2);
  std::vector<int> labels;
  for (const tg::Batch& batch : seq) labels.insert(labels.end(), batch.labels.begin(), batch.labels.end());
  CHECK(labels == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7});
  CHECK_THROWS_AS(tg::DataLoader(data, {.batch_size = 0}), tg::Error);
}

TEST_CASE(
    "DataLoader shards concatenate, rank by rank, to the batches of one process with world_size x batch") {
  TempDir dir;
  write_numbered_mnist(dir, 100);
  tg::MNIST data(dir.path.string(), tg::Split::Train);
  for (int world : {2, 3}) {
    CAPTURE(world);
    const std::size_t batch = 8;
    tg::DataLoader whole(data, {.batch_size = batch * static_cast<std::size_t>(world), .seed = 5});
    std::vector<tg::DataLoader> shards;
    for (int r = 0; r < world; ++r)
      shards.emplace_back(
          data, tg::DataLoaderOptions{.batch_size = batch, .seed = 5, .rank = r, .world_size = world});
    for (int epoch = 0; epoch < 2; ++epoch) {
      const EpochBatches want = one_epoch(whole);
      std::vector<EpochBatches> got;
      for (auto& s : shards) {
        CHECK(s.num_batches() == whole.num_batches());  // every rank takes the same number of steps
        got.push_back(one_epoch(s));
      }
      for (std::size_t step = 0; step < want.labels.size(); ++step) {
        std::vector<float> images;
        std::vector<int> labels;
        for (const EpochBatches& g : got) {
          REQUIRE(g.labels.size() == want.labels.size());
          CHECK(g.labels[step].size() <= batch);
          images.insert(images.end(), g.images[step].begin(), g.images[step].end());
          labels.insert(labels.end(), g.labels[step].begin(), g.labels[step].end());
        }
        CHECK(images == want.images[step]);
        CHECK(labels == want.labels[step]);
      }
    }
  }
}

TEST_CASE(
    "DataLoader shards are disjoint, cover the epoch, and a short last global batch leaves some ranks "
    "empty") {
  TempDir dir;
  write_numbered_mnist(dir, 100);
  tg::MNIST data(dir.path.string(), tg::Split::Train);
  const int world = 3;  // global batch 24: 4 full ones, then 4 examples: rank 0 gets 4, ranks 1 and 2 none
  std::set<float> seen;
  std::size_t total = 0;
  for (int r = 0; r < world; ++r) {
    tg::DataLoader loader(data, {.batch_size = 8, .seed = 9, .rank = r, .world_size = world});
    CHECK(loader.global_batch_size() == 24);
    REQUIRE(loader.num_batches() == 5);
    std::size_t step = 0;
    for (const tg::Batch& b : loader) {
      const std::size_t want = step < 4 ? 8 : (r == 0 ? 4 : 0);
      CHECK(b.labels.size() == want);
      CHECK(b.images.shape()[0] == want);
      for (float v : b.images.value()) {
        CHECK(seen.count(v) == 0);  // no example on two ranks (or twice on one)
        seen.insert(v);
      }
      total += b.labels.size();
      ++step;
    }
  }
  CHECK(total == 100);
  CHECK(seen.size() == 100);

  tg::DataLoader dropping(data, {.batch_size = 8, .drop_last = true, .rank = 1, .world_size = world});
  CHECK(dropping.num_batches() == 4);  // drop_last drops the short global batch on every rank
}

TEST_CASE("DataLoader without sharding options is unchanged: rank 0 of a world of one") {
  TempDir dir;
  write_numbered_mnist(dir, 30);
  tg::MNIST data(dir.path.string(), tg::Split::Train);
  tg::DataLoader plain(data, {.batch_size = 7, .seed = 3});
  tg::DataLoader explicit_one(data, {.batch_size = 7, .seed = 3, .rank = 0, .world_size = 1});
  const EpochBatches a = one_epoch(plain), b = one_epoch(explicit_one);
  CHECK(a.images == b.images);
  CHECK(a.labels == b.labels);
  CHECK(a.labels.size() == 5);
  CHECK(plain.global_batch_size() == 7);
}

TEST_CASE("DataLoader rejects a rank outside 0..world_size-1 and a world_size below 1") {
  TempDir dir;
  write_numbered_mnist(dir, 10);
  tg::MNIST data(dir.path.string(), tg::Split::Train);
  CHECK_THROWS_WITH_AS(tg::DataLoader(data, {.rank = 2, .world_size = 2}),
                       doctest::Contains("rank must be in [0, 2)"), tg::Error);
  CHECK_THROWS_WITH_AS(tg::DataLoader(data, {.rank = -1, .world_size = 2}), doctest::Contains("got -1"),
                       tg::Error);
  CHECK_THROWS_WITH_AS(tg::DataLoader(data, {.world_size = 0}), doctest::Contains("world_size must be >= 1"),
                       tg::Error);
}

namespace {

const tg::Augmentation kFlipCrop = tg::parse_augmentation("flip,crop=4");

// The batches of `epochs` epochs of a loader over `data` with `options`.
std::vector<EpochBatches> epochs_of(const tg::ImageDataset& data, const tg::DataLoaderOptions& options,
                                    int epochs = 2) {
  tg::DataLoader loader(data, options);
  std::vector<EpochBatches> out;
  for (int e = 0; e < epochs; ++e) out.push_back(one_epoch(loader));
  return out;
}

}  // namespace

TEST_CASE("DataLoader without augmentation: each example's normalized(), in order, on one thread or two") {
  TempDir dir;
  write_small_cifar(dir);
  const tg::CIFAR10 data(dir.path.string(), tg::Split::Train);
  for (int threads : {1, 2}) {
    CAPTURE(threads);
    const ScopedNumThreads pool(threads);
    tg::DataLoader loader(data, {.batch_size = 32, .seed = 6});  // 32 examples: split over two threads
    const std::vector<std::size_t> order = loader.order(0);
    std::size_t position = 0;
    for (const tg::Batch& batch : loader) {
      for (std::size_t i = 0; i < batch.labels.size(); ++i, ++position) {
        std::vector<float> want(data.example_size());
        data.normalized(order[position], want.data());
        const float* got = batch.images.value().data() + i * data.example_size();
        CHECK(std::vector<float>(got, got + want.size()) == want);
        CHECK(batch.labels[i] == data.label(order[position]));
      }
    }
    CHECK(position == data.size());
  }
}

TEST_CASE("DataLoader with augmentation: same seed, same batches; another seed or epoch, others") {
  TempDir dir;
  write_small_cifar(dir);
  const tg::CIFAR10 data(dir.path.string(), tg::Split::Train);
  const auto a = epochs_of(data, {.batch_size = 16, .seed = 3, .augment = kFlipCrop});
  const auto b = epochs_of(data, {.batch_size = 16, .seed = 3, .augment = kFlipCrop});
  const auto other_seed = epochs_of(data, {.batch_size = 16, .seed = 4, .augment = kFlipCrop});
  const auto plain = epochs_of(data, {.batch_size = 16, .seed = 3});
  CHECK(a[0].images == b[0].images);
  CHECK(a[1].images == b[1].images);
  CHECK(a[0].labels == b[0].labels);
  CHECK(a[0].images != other_seed[0].images);
  CHECK(a[0].labels == plain[0].labels);  // augmentation leaves the order alone
  CHECK(a[0].images != plain[0].images);
  // Without shuffling, epoch 2 has epoch 1's order but new crops and flips.
  const auto unshuffled = epochs_of(data, {.batch_size = 16, .shuffle = false, .augment = kFlipCrop});
  CHECK(unshuffled[0].labels == unshuffled[1].labels);
  CHECK(unshuffled[0].images != unshuffled[1].images);
}

TEST_CASE("DataLoader with augmentation gives the same batches on one thread and on two") {
  TempDir dir;
  write_small_cifar(dir);
  const tg::CIFAR10 data(dir.path.string(), tg::Split::Train);
  const tg::DataLoaderOptions options{.batch_size = 25, .seed = 8, .augment = kFlipCrop};  // 25: two chunks
  std::vector<EpochBatches> one, two;
  {
    const ScopedNumThreads pool(1);
    one = epochs_of(data, options);
  }
  {
    const ScopedNumThreads pool(2);
    two = epochs_of(data, options);
  }
  for (int e = 0; e < 2; ++e) {
    CHECK(one[e].images == two[e].images);
    CHECK(one[e].labels == two[e].labels);
  }
}

TEST_CASE("augmented shards concatenate, rank by rank, to the augmented batches of one process") {
  TempDir dir;
  write_small_cifar(dir);
  const tg::CIFAR10 data(dir.path.string(), tg::Split::Train);
  const auto whole = epochs_of(data, {.batch_size = 16, .seed = 5, .augment = kFlipCrop});
  std::vector<std::vector<EpochBatches>> shards;
  for (int r = 0; r < 2; ++r)
    shards.push_back(
        epochs_of(data, {.batch_size = 8, .seed = 5, .rank = r, .world_size = 2, .augment = kFlipCrop}));
  for (int e = 0; e < 2; ++e) {
    CAPTURE(e);
    REQUIRE(whole[e].images.size() == 4);  // 50 examples: 3 global batches of 16, then 2 (rank 1's empty)
    for (std::size_t step = 0; step < whole[e].images.size(); ++step) {
      std::vector<float> images = shards[0][e].images[step];
      images.insert(images.end(), shards[1][e].images[step].begin(), shards[1][e].images[step].end());
      CHECK(images == whole[e].images[step]);
    }
  }
}

TEST_CASE("an augmented epoch resumed with begin_at(k) has the batches of iterating to k") {
  TempDir dir;
  write_small_cifar(dir);
  const tg::CIFAR10 data(dir.path.string(), tg::Split::Train);
  const tg::DataLoaderOptions options{.batch_size = 8, .seed = 11, .augment = kFlipCrop};
  tg::DataLoader full(data, options);
  one_epoch(full);
  const EpochBatches second = one_epoch(full);
  for (std::size_t k : {1, 4, 6}) {
    CAPTURE(k);
    tg::DataLoader resumed(data, options);
    resumed.set_epoch(1);
    std::size_t step = k;
    for (auto it = resumed.begin_at(k); it != resumed.end(); ++it, ++step) {
      const tg::Array& images = it->images.value();
      CHECK(std::vector<float>(images.begin(), images.end()) == second.images[step]);
      CHECK(it->labels == second.labels[step]);
    }
    CHECK(step == second.images.size());
  }
}

TEST_CASE("DataLoader refuses augmentation when the data set's normalization does not fit its channels") {
  // An ImageDataset whose channel_mean() has a value per channel is what augmentation needs; CIFAR-10 and
  // MNIST give one, so a data set of its own that does not is the one case to reject.
  struct NoStatistics : tg::ImageDataset {
    std::size_t size() const override { return 1; }
    std::size_t channels() const override { return 3; }
    std::size_t rows() const override { return 1; }
    std::size_t cols() const override { return 1; }
    int label(std::size_t) const override { return 0; }
    const std::uint8_t* pixels(std::size_t) const override { return bytes; }
    void normalized(std::size_t, float* out) const override { std::fill(out, out + 3, 0.f); }
    std::vector<float> channel_mean() const override { return {0.5f}; }
    std::vector<float> channel_std() const override { return {0.5f}; }
    void keep_first(std::size_t) override {}
    std::uint8_t bytes[3] = {};
  };
  const NoStatistics data;
  CHECK_NOTHROW(tg::DataLoader(data, {}));
  CHECK_THROWS_WITH_AS(tg::DataLoader(data, {.augment = kFlipCrop}),
                       doctest::Contains("3 channels, 1 means and 1 stds"), tg::Error);
}
