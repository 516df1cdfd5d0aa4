// DataLoader (data/dataloader.hpp): every example once per epoch in a seed-determined order, drop_last, and
// sharding over ranks (rank, world_size) that needs no mpirun. The multi-process tests are in tests/mpi/.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <vector>

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
