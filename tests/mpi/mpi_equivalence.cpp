// Run under `mpirun -np 2 mpi_equivalence MNIST_DIR`: data-parallel training is exactly bigger-batch
// training. Two ranks with batch 32 each (tg::distributed + a sharded DataLoader) train lenet for 20 steps;
// rank 0 then trains alone with batch 64 on the same samples, and every rank's parameters must match that run
// (within float tolerance: the sums run in another order) and each other's (exactly). Two data sizes make the
// last global batch of an epoch short: 600 examples (step 10: rank 0 gets 24, rank 1 nothing) and 100 (step
// 2: 32 and 4), so the weighting of uneven and empty shards is checked too.
// Batch norm's running statistics: each rank's follow its own shard, so they differ between ranks; after
// distributed::average_values(model.buffers()) (what `tapegrad train` does once per epoch) every rank holds
// the same ones, and (the running update being linear in the batch statistics) the same as when they are
// averaged after every step. Prints "mpi equivalence: ok".
#include <cmath>
#include <cstdio>
#include <exception>

#include "cli/models.hpp"
#include "mpi_compare.hpp"
#include "tapegrad.hpp"

namespace {

// apps/models/lenet.tg, as `tapegrad train` builds it.
tg::Sequential lenet() {
  const tg::cli::ModelText text = tg::cli::find_model("lenet");
  return tg::model_from_text(text.text, {1, 28, 28}, 10, text.source);
}

namespace dist = tg::distributed;
using mpi_test::from_rank;
using mpi_test::worst_ratio;

constexpr std::size_t kSteps = 20;

// Parameters after kSteps SGD steps of lenet from seed 1. Sharded (rank/world of this process, gradients
// all-reduced) when `sharded`; otherwise one process with the whole batch. `perturb`: start from other
// weights than rank 0, which broadcast_parameters must undo.
std::vector<tg::Array> train(const tg::MNIST& data, std::size_t batch_size, bool sharded, bool perturb) {
  tg::manual_seed(1);
  tg::Sequential model = lenet();
  const std::vector<tg::Tensor> params = model.parameters();
  if (perturb) {
    for (const tg::Tensor& p : params) p.node()->value += 0.25f;
  }
  if (sharded) dist::broadcast_parameters(params);
  tg::SGD opt(params, {.lr = 0.05f, .momentum = 0.9f, .weight_decay = 5e-4f});
  tg::DataLoader loader(data, {.batch_size = batch_size,
                               .shuffle = true,
                               .seed = 3,
                               .rank = sharded ? dist::rank() : 0,
                               .world_size = sharded ? dist::world_size() : 1});
  std::size_t steps = 0;
  while (steps < kSteps) {
    for (const tg::Batch& batch : loader) {
      opt.zero_grad();
      if (!batch.labels.empty()) tg::cross_entropy(model(batch.images), batch.labels).backward();
      if (sharded) dist::allreduce_gradients(params, batch.labels.size());
      opt.step();
      if (++steps == kSteps) break;
    }
  }
  std::vector<tg::Array> values;
  for (const tg::Tensor& p : params) values.push_back(p.value());
  return values;
}

// A small batch-norm model: conv2d 4 3, batchnorm2d, relu, flatten, linear.
tg::Sequential bn_model() {
  return tg::model_from_text("conv2d 4 3\nbatchnorm2d\nrelu\nmaxpool2d 2\nflatten\nlinear 10\n", {1, 28, 28},
                             10, "bn.tg");
}

// The buffers (running_mean, running_var, num_batches_tracked) after kSteps sharded SGD steps of bn_model:
// averaged over the ranks after every step (`every_step`), or never (the caller averages at the end).
std::vector<tg::Array> train_bn(const tg::MNIST& data, bool every_step) {
  tg::manual_seed(2);
  tg::Sequential model = bn_model();
  model.train();
  const std::vector<tg::Tensor> params = model.parameters();
  dist::broadcast_parameters(params);
  tg::SGD opt(params, {.lr = 0.05f, .momentum = 0.9f});
  tg::DataLoader loader(
      data,
      {.batch_size = 32, .shuffle = true, .seed = 5, .rank = dist::rank(), .world_size = dist::world_size()});
  std::size_t steps = 0;
  while (steps < kSteps) {
    for (const tg::Batch& batch : loader) {
      opt.zero_grad();
      tg::cross_entropy(model(batch.images), batch.labels).backward();
      dist::allreduce_gradients(params, batch.labels.size());
      opt.step();
      if (every_step) dist::average_values(model.buffers());
      if (++steps == kSteps) break;
    }
  }
  std::vector<tg::Array> values;
  for (const tg::Tensor& b : model.buffers()) values.push_back(b.value());
  return values;
}

int run(const std::string& mnist_dir) {
  const int rank = dist::rank(), world = dist::world_size();
  if (world != 2) tg::fail("run me under mpirun -np 2 (world size is ", world, ")");
  tg::set_num_threads(1);
  tg::MNIST data(mnist_dir, tg::Split::Train);
  double failures = 0;
  for (std::size_t limit : {600, 100}) {
    data.keep_first(limit);
    const std::vector<tg::Array> sharded = train(data, 32, true, rank != 0);
    std::vector<tg::Array> single = sharded;  // shapes, for the ranks that receive rank 0's reference
    if (rank == 0) single = train(data, 64, false, false);
    single = from_rank(single, 0);
    const std::vector<tg::Array> rank0_sharded = from_rank(sharded, 0);
    const double vs_single = worst_ratio(sharded, single), vs_rank0 = worst_ratio(sharded, rank0_sharded);
    const std::vector<tg::Array> initial = [] {
      tg::manual_seed(1);
      std::vector<tg::Array> v;
      for (const tg::Tensor& p : lenet().parameters()) v.push_back(p.value());
      return v;
    }();
    const bool trained = worst_ratio(sharded, initial) > 10;  // the test would notice a run that did nothing
    std::printf(
        "rank %d, %zu examples: vs one process with batch 64: worst |diff| / tolerance %.3g; vs rank 0: %g; "
        "moved from the initial weights: %s\n",
        rank, limit, vs_single, vs_rank0, trained ? "yes" : "NO");
    std::fflush(stdout);
    failures += (vs_single <= 1.0 && vs_rank0 == 0.0 && trained) ? 0 : 1;
  }
  {
    // 640 examples: every step gives each rank a full 32 (no empty shard, whose rank would skip the update).
    data = tg::MNIST(mnist_dir, tg::Split::Train);
    data.keep_first(640);
    std::vector<tg::Array> once = train_bn(data, false);
    // The ranks saw other images, so their statistics differ (rank 1's from rank 0's; the sum tells rank 0).
    double before[1] = {worst_ratio(once, from_rank(once, 0))};
    dist::allreduce_sum(before);
    std::vector<tg::Tensor> buffers;
    for (const tg::Array& a : once) buffers.emplace_back(a);
    dist::average_values(buffers);
    once.clear();
    for (const tg::Tensor& b : buffers) once.push_back(b.value());
    const std::vector<tg::Array> every = train_bn(data, true);
    const double vs_rank0 = worst_ratio(once, from_rank(once, 0)), vs_every = worst_ratio(once, every);
    std::printf(
        "rank %d, batch norm: running statistics vs rank 0 before averaging: worst |diff| / tolerance %.3g; "
        "after: %g; averaged once vs after every step: %.3g\n",
        rank, before[0], vs_rank0, vs_every);
    std::fflush(stdout);
    failures += (before[0] > 1.0 && vs_rank0 == 0.0 && vs_every <= 1.0) ? 0 : 1;
  }
  double total[1] = {failures};
  dist::allreduce_sum(total);
  if (rank == 0) std::printf(total[0] == 0 ? "mpi equivalence: ok\n" : "mpi equivalence: FAILED\n");
  return total[0] == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  dist::Context mpi(argc, argv);
  try {
    if (argc != 2) tg::fail("usage: mpirun -np 2 mpi_equivalence MNIST_DIR");
    return run(argv[1]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mpi_equivalence: error on rank %d: %s\n", dist::rank(), e.what());
    dist::abort(1);
  }
}
