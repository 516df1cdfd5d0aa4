// tg::distributed: data-parallel training over MPI. Every rank holds the whole model, trains on its shard
// of each batch (DataLoaderOptions::rank / world_size), and after backward the ranks average their gradients
// with one all-reduce, so every rank applies the same update and the parameters stay identical.
//
//   int main(int argc, char** argv) {
//     tg::distributed::Context mpi(argc, argv);            // MPI_Init ... MPI_Finalize
//     tg::Sequential model = ...;
//     tg::distributed::broadcast_parameters(model);  // all ranks start from rank 0's parameters and buffers
//     tg::DataLoader loader(train, {.batch_size = 32, .rank = tg::distributed::rank(),
//                                   .world_size = tg::distributed::world_size()});
//     for (const tg::Batch& batch : loader) {
//       opt.zero_grad();
//       if (!batch.labels.empty()) tg::cross_entropy(model(batch.images), batch.labels).backward();
//       tg::distributed::allreduce_gradients(model.parameters(), batch.labels.size());
//       opt.step();
//     }
//   }
//
// Built without MPI (CMake option TAPEGRAD_MPI=OFF, or MPI not found) the same calls work as in a world of
// one process: rank 0, world size 1, broadcast and all-reduce do nothing. Before a Context exists (or after
// it is destroyed) the functions behave the same way, so library code can call them unconditionally.
// MPI is called from the thread that made the Context only (MPI_THREAD_FUNNELED).
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "core/autograd/tensor.hpp"

namespace tg::distributed {

// True when tapegrad was built with MPI (TAPEGRAD_MPI).
bool available();

// Initializes MPI (if available, not yet initialized, and the process was started by mpirun or another MPI
// launcher: see launched_by_mpirun) and finalizes it at scope exit. One per process. Started on its own, the
// process is a world of one without MPI.
// Errors of MPI calls are then returned to tapegrad, which throws tg::Error naming the call.
// Whether this process's environment says an MPI launcher started it (OMPI_COMM_WORLD_SIZE, PMIX_RANK,
// PMI_RANK or PMI_SIZE is set).
bool launched_by_mpirun();

class Context {
 public:
  Context(int& argc, char**& argv);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

 private:
  bool owns_ = false;  // this Context initialized MPI, so it finalizes it
};

// This process's rank in [0, world_size()); 0 without MPI or outside a Context.
int rank();
// Number of processes; 1 without MPI or outside a Context.
int world_size();
// Number of processes of the job on this machine (MPI_COMM_TYPE_SHARED); 1 without MPI or outside a Context.
// E.g. to split the cores: threads = cores / local_world_size().
int local_world_size();
// rank() == 0: the process that prints, writes checkpoints and evaluates.
bool is_main();

// Overwrites every rank's parameter values with root's (one MPI_Bcast of all of them, packed). Requires the
// same parameters, in the same order and shapes, on every rank; the tensor count and total size are
// checked first (a second, small broadcast), and a mismatch throws. Any tensors can be passed (buffers
// too): layers/module.hpp adds broadcast_parameters(const Module&, int root), which sends a model's
// parameters and buffers.
void broadcast_parameters(const std::vector<Tensor>& params, int root = 0);

// After backward: replaces every parameter's gradient with the weighted average over ranks,
//   grad = sum_r (local_examples_r * grad_r) / sum_r local_examples_r,
// which, when each rank's loss is the mean over its local_examples examples, is exactly the gradient of the
// mean loss over all ranks' examples (uneven or empty shards included; a rank with 0 examples contributes
// nothing, whatever its grad holds). With the default local_examples = 1 it is the plain mean over ranks.
// All gradients and the example count travel in ONE contiguous buffer and ONE MPI_Allreduce per call.
// Every rank must call it, with the same parameters in the same order (not checked: it would cost a second
// collective per step; broadcast_parameters at the start checks the layout). No-op in a world of one.
void allreduce_gradients(const std::vector<Tensor>& params, std::size_t local_examples = 1);

// Replaces every tensor's value with its mean over ranks, in place (one MPI_Allreduce of all of them, packed,
// summed in double). For batch norm's running statistics: each rank updates them from its own batches, and
// as the update is linear (r = (1 - momentum) r + momentum * batch_stat) the mean of the ranks' running means
// is exactly the running mean of the ranks' averaged batch means; averaging once before the statistics are
// used (evaluation, a checkpoint) gives the same values as averaging every step, and leaves every rank
// identical. Same layout on every rank, as allreduce_gradients. No-op in a world of one.
void average_values(const std::vector<Tensor>& tensors);

// Sums `values` element-wise over all ranks, in place (one MPI_Allreduce); e.g. losses and counts for a
// log line. No-op in a world of one.
void allreduce_sum(std::span<double> values);

// Waits until every rank got here. No-op in a world of one.
void barrier();

// Stops every rank of the job with `code` (MPI_Abort); without MPI (or outside a Context) exits this
// process with `code`. For errors that only some ranks see: the others would wait forever in a collective.
[[noreturn]] void abort(int code);

}  // namespace tg::distributed
