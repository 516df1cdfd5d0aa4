// The steps of `tapegrad train`, which train.cpp calls in order: set-up (a new run or --resume), the data,
// the optimizer and schedule, the training loop, checkpoints. Internal to apps/cli.
#pragma once

#include <csignal>
#include <cstddef>
#include <memory>
#include <vector>

#include "commands.hpp"
#include "evaluation.hpp"
#include "run_checkpoint.hpp"

namespace tg::cli {

// This process's place in an MPI job (without MPI: rank 0 of 1). Rank 0 alone prints, evaluates and writes.
struct Ranks {
  int rank = 0, world = 1;
  bool main() const { return rank == 0; }
};

// ---- set-up (train_setup.cpp)

// What is trained: the run's description, its model and, resumed, the checkpoint's optimizer state.
struct Run {
  RunInfo info;
  Sequential model;  // a new run's is built when the data's shape is known (open_training_data)
  TrainingState resumed;
  bool resuming = false;
  // --init: the checkpoint whose weights the new model starts from (train_init.cpp).
  std::shared_ptr<const Checkpoint> init;
  std::string init_path;
  bool new_head = false;
};

// --init: the checkpoint, its model text (the last linear line made `linear classes` for --new-head) and
// normalization into `run`; UsageError with --resume or --model, or --new-head without --init.
void prepare_init(const TrainOptions& o, Run& run);
// --init: the checkpoint's tensors into the new model, all of them, or all but the new head's; tg::Error
// naming the data's classes when they differ from the checkpoint's without --new-head.
void load_init(const Run& run);

// A new run from the flags; UsageError for flags that cannot go together (another optimizer's flags, the
// folder flags on other data, a flat folder without --val-split).
Run new_run(const TrainOptions& o, const Ranks& ranks);
// The checkpoint's run (--resume): its model, options and position, with --epochs and --data applied;
// UsageError for a flag whose value differs from the checkpoint's (resume_flags.hpp) and for a run that is
// already done.
Run resumed_run(const TrainOptions& o, const Ranks& ranks);

struct TrainData {
  std::unique_ptr<ImageDataset> train, test;
};
// The training split, then the test split read as the training split came out (size, channels, classes,
// normalization). A new run's model is built as soon as the data's shape is known from the headers, before
// any image is read or decoded, so that a model-file error comes first; a resumed run's shape is checked
// there against the checkpoint's.
TrainData open_training_data(const TrainOptions& o, Run& run);

// ---- optimizer and schedule (train_setup.cpp)

// The optimizer, this rank's loader of the training batches and the learning-rate schedule, at the run's
// position (resumed: the optimizer's state, the random generator and the schedule's step restored).
struct Training {
  std::vector<Tensor> params;
  std::unique_ptr<Optimizer> optimizer;
  std::unique_ptr<LRSchedule> schedule;  // none for a constant learning rate
  DataLoader loader;
  std::size_t steps_per_epoch = 0;
  std::size_t first_step = 0;  // of the next epoch: > 0 when resuming mid-epoch
};
Training start_training(const TrainOptions& o, Run& run, const ImageDataset& train_set, const Ranks& ranks);

// "momentum 0.9, weight decay 0.0005" or "betas 0.9, 0.999, eps 1e-08, weight decay 0.01".
std::string optimizer_options_text(const RunInfo& info);

// ---- the training loop (train_loop.cpp)

// For the life of the training loop, the first SIGINT or SIGTERM (Ctrl-C) asks the loop to stop after the
// step; a second one ends the process at once. The previous handlers are put back at the end.
class StopSignals {
 public:
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
  static bool requested();

 private:
  struct sigaction old_int_ = {}, old_term_ = {};
};

// An epoch's sums over every rank's examples (interrupted: the partial epoch's, its earlier part included).
struct EpochSums {
  double loss_sum = 0, seconds = 0;
  std::size_t seen = 0, correct = 0;
  std::size_t steps = 0;  // done, of steps_per_epoch
  bool interrupted = false;
};
// Trains epoch `epoch` (1-based) from training.first_step, printing its progress line on rank 0, and stops
// after a step when Ctrl-C asked on any rank. The batch-norm statistics are averaged over the ranks at the
// end. tg::Error when the loss is not finite.
EpochSums train_epoch(Run& run, Training& training, std::size_t train_size, int epoch, const Ranks& ranks);

// ---- checkpoints (train_loop.cpp)

// After a whole epoch (rank 0): its metrics in the history, the position, and the checkpoint, metrics.csv
// and chart.png written; prints the epoch's line.
void end_epoch(const TrainOptions& o, Run& run, const Training& training, const EpochSums& sums,
               const Evaluation& test, int epoch);
// After Ctrl-C: the position within the epoch and its sums so far, the checkpoint and metrics.csv written
// (rank 0), and the command that resumes it printed.
void save_interrupted(const TrainOptions& o, Run& run, const Training& training, const EpochSums& sums,
                      int epoch, const Ranks& ranks);

// Whether stdout is a terminal: progress lines are redrawn in place there, printed one per line elsewhere.
bool stdout_is_terminal();

}  // namespace tg::cli
