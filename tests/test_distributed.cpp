// Data-parallel pieces that need no mpirun: DataLoader sharding, and tg::distributed in a world of one
// (no Context, or a build without MPI). The multi-process tests are in tests/mpi/.
#include <doctest/doctest.h>

#include <set>

#include "tapegrad.hpp"
#include "test_util.hpp"

using namespace test_util;

namespace {

// n images of 1x1 where image i has pixel value i (so normalized values identify examples), labels i % 10.
void write_numbered_mnist(const TempDir& dir, std::uint32_t n) {
  auto idx = [](const std::vector<std::uint32_t>& dims, const std::vector<std::uint8_t>& data) {
    std::vector<std::uint8_t> out = {0, 0, 0x08, static_cast<std::uint8_t>(dims.size())};
    for (std::uint32_t d : dims) {
      for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(d >> shift));
    }
    out.insert(out.end(), data.begin(), data.end());
    return out;
  };
  std::vector<std::uint8_t> pixels, labels;
  for (std::uint32_t i = 0; i < n; ++i) {
    pixels.push_back(static_cast<std::uint8_t>(i));
    labels.push_back(static_cast<std::uint8_t>(i % 10));
  }
  write_bytes(dir.file("train-images-idx3-ubyte"), idx({n, 1, 1}, pixels));
  write_bytes(dir.file("train-labels-idx1-ubyte"), idx({n}, labels));
}

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

TEST_CASE("tg::distributed outside a Context is a world of one: rank 0, and collectives change nothing") {
  CHECK(tg::distributed::rank() == 0);
  CHECK(tg::distributed::world_size() == 1);
  CHECK(tg::distributed::is_main());
  tg::Tensor w(tg::Array{{1.f, 2.f}, {3.f, 4.f}}, true);
  tg::Tensor b(tg::Array{0.5f}, true);
  tg::sum(w * w + b).backward();
  const tg::Array grad_w = w.grad(), grad_b = b.grad(), value_w = w.value();
  tg::distributed::allreduce_gradients({w, b}, 32);
  tg::distributed::broadcast_parameters({w, b});
  CHECK(w.grad() == grad_w);
  CHECK(b.grad() == grad_b);
  CHECK(w.value() == value_w);
  std::vector<double> sums = {1.5, 2.0};
  tg::distributed::allreduce_sum(sums);
  CHECK(sums == std::vector<double>{1.5, 2.0});
  tg::distributed::barrier();
}
