// Run under `mpirun -np 2 mpi_residual MNIST_DIR MODEL_FILE` with MODEL_FILE a residual model file (batch
// norm inside the blocks' bodies and shortcut: tests/fixtures/cli/small_residual.tg): data-parallel training
// of residual blocks, as `tapegrad train` does it (rank 0's weights broadcast, batch 32 per rank from a
// sharded DataLoader, gradients all-reduced every step, the buffers averaged once per epoch), for 3 epochs of
// 640 images. Checks that every step's loss is finite on every rank; that after each epoch the buffers
// (running statistics of the batch norms in 4.body, 6.shortcut, ...) differed between the ranks before the
// averaging and every rank then holds exactly rank 0's parameters and buffers; that the batch norms counted
// every step; and that the model learned (weights moved, the training loss fell, and test accuracy on
// mnist_small, the same on both ranks, at least twice chance). Prints "mpi residual: ok".
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "mpi_compare.hpp"
#include "tapegrad.hpp"

namespace {

namespace dist = tg::distributed;
using mpi_test::from_rank;
using mpi_test::worst_ratio;

constexpr int kEpochs = 3;

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  if (!in) tg::fail("cannot read ", path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<tg::Array> values(const std::vector<tg::Tensor>& tensors) {
  std::vector<tg::Array> out;
  for (const tg::Tensor& t : tensors) out.push_back(t.value());
  return out;
}

// The worst ratio of this rank's arrays to rank 0's, the largest over the ranks (the same on every rank).
double worst_vs_rank0(const std::vector<tg::Array>& mine) {
  double worst[1] = {worst_ratio(mine, from_rank(mine, 0))};
  dist::allreduce_sum(worst);  // rank 0 adds 0
  return worst[0];
}

// Test accuracy of the model in eval mode on the whole test set (every rank evaluates all of it).
double test_accuracy(tg::Sequential& model, const tg::MNIST& test) {
  model.eval();
  tg::NoGradGuard no_grad;
  std::size_t correct = 0;
  for (const tg::Batch& batch : tg::DataLoader(test, {.batch_size = 100, .shuffle = false})) {
    const tg::Array logits = model(batch.images).value();  // [B, 10]
    for (std::size_t i = 0; i < batch.labels.size(); ++i) {
      const float* row = logits.data() + i * 10;
      correct += std::max_element(row, row + 10) - row == batch.labels[i];
    }
  }
  model.train();
  return static_cast<double>(correct) / static_cast<double>(test.size());
}

int run(const std::string& mnist_dir, const std::string& model_file) {
  const int rank = dist::rank(), world = dist::world_size();
  if (world != 2) tg::fail("run me under mpirun -np 2 (world size is ", world, ")");
  tg::set_num_threads(1);
  tg::MNIST data(mnist_dir, tg::Split::Train);
  data.keep_first(640);  // 10 steps of 2 x 32 an epoch: every rank a full batch at every step
  const tg::MNIST test(mnist_dir, tg::Split::Test);

  tg::manual_seed(static_cast<std::uint64_t>(1 + rank));  // other initial weights on rank 1: the broadcast
  tg::Sequential model = tg::model_from_text(read_text(model_file), {1, 28, 28}, 10, model_file);
  model.train();
  const std::vector<tg::Tensor> params = model.parameters();
  dist::broadcast_parameters(params);
  const std::vector<tg::Array> initial = values(params);
  tg::SGD opt(params, {.lr = 0.05f, .momentum = 0.9f, .weight_decay = 5e-4f});
  tg::DataLoader loader(data, {.batch_size = 32, .seed = 3, .rank = rank, .world_size = world});

  double failures = 0, first_loss = 0, last_loss = 0;
  std::size_t steps = 0;
  for (int epoch = 1; epoch <= kEpochs; ++epoch) {
    double sums[3] = {0, 0, 0};  // loss sum, examples, non-finite losses: over both ranks below
    for (const tg::Batch& batch : loader) {
      opt.zero_grad();
      const tg::Tensor loss = tg::cross_entropy(model(batch.images), batch.labels);
      loss.backward();
      dist::allreduce_gradients(params, batch.labels.size());
      opt.step();
      ++steps;
      const double l = loss.item();
      sums[0] += std::isfinite(l) ? l * static_cast<double>(batch.labels.size()) : 0;
      sums[1] += static_cast<double>(batch.labels.size());
      sums[2] += std::isfinite(l) ? 0 : 1;
    }
    dist::allreduce_sum(sums);
    const double train_loss = sums[0] / sums[1];
    (epoch == 1 ? first_loss : last_loss) = train_loss;

    const double buffers_before = worst_vs_rank0(values(model.buffers()));
    dist::average_values(model.buffers());
    const double buffers_after = worst_vs_rank0(values(model.buffers()));
    const double params_vs_rank0 = worst_vs_rank0(values(params));
    std::printf(
        "rank %d, epoch %d: train loss %.4f (%g non-finite); buffers vs rank 0 before averaging: worst "
        "|diff| / "
        "tolerance %.3g, after: %g; parameters vs rank 0: %g\n",
        rank, epoch, train_loss, sums[2], buffers_before, buffers_after, params_vs_rank0);
    std::fflush(stdout);
    failures += (sums[2] == 0 && std::isfinite(train_loss) && buffers_before > 1.0 && buffers_after == 0.0 &&
                 params_vs_rank0 == 0.0)
                    ? 0
                    : 1;
  }

  // Every batch norm counted every step, those in the blocks' bodies and shortcuts (4.body.1, 6.shortcut.1)
  // too.
  std::size_t counters = 0, counted = 0, in_body = 0, in_shortcut = 0;
  for (const auto& [name, buffer] : model.named_buffers()) {
    if (!name.ends_with("num_batches_tracked")) continue;
    ++counters;
    counted += buffer.value().data()[0] == static_cast<float>(steps) ? 1 : 0;
    in_body += name.find(".body.") != std::string::npos ? 1 : 0;
    in_shortcut += name.find(".shortcut.") != std::string::npos ? 1 : 0;
  }
  const double moved = worst_ratio(values(params), initial);
  const double accuracy = test_accuracy(model, test);
  const double accuracy_vs_rank0 = worst_vs_rank0({tg::Array({static_cast<float>(accuracy)})});
  std::printf(
      "rank %d: %zu steps, %zu of %zu batch norms counted them; moved from the initial weights: %s; train "
      "loss "
      "%.4f -> %.4f; test accuracy %.2f%% (vs rank 0: %g)\n",
      rank, steps, counted, counters, moved > 10 ? "yes" : "NO", first_loss, last_loss, 100 * accuracy,
      accuracy_vs_rank0);
  std::fflush(stdout);
  failures += (in_body > 0 && in_shortcut > 0 && counted == counters && moved > 10 &&
               last_loss < first_loss && accuracy > 0.2 && accuracy_vs_rank0 == 0.0)
                  ? 0
                  : 1;

  double total[1] = {failures};
  dist::allreduce_sum(total);
  if (rank == 0) std::printf(total[0] == 0 ? "mpi residual: ok\n" : "mpi residual: FAILED\n");
  return total[0] == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  dist::Context mpi(argc, argv);
  try {
    if (argc != 3) tg::fail("usage: mpirun -np 2 mpi_residual MNIST_DIR MODEL_FILE");
    return run(argv[1], argv[2]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mpi_residual: error on rank %d: %s\n", dist::rank(), e.what());
    dist::abort(1);
  }
}
