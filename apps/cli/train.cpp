// tapegrad train: trains a model file (or a built-in model) on a data set, shows progress, evaluates after
// each epoch, and writes a self-describing checkpoint (run_checkpoint.hpp), a metrics CSV, a PNG of the first
// conv layer's filters and one of the test mistakes. Under `mpirun -np N tapegrad train ...` it trains
// data-parallel (tg::distributed): --batch-size is per rank, each rank takes its slice of every global batch
// of N x batch-size, gradients are averaged each step, and rank 0 alone prints, evaluates and writes files.
// An error on any rank stops every rank (cli.cpp). Ctrl-C (SIGINT or SIGTERM) finishes the step, writes a
// checkpoint that resumes exactly there, exits 130. The steps live in train_setup.cpp (a new run or
// --resume, data, optimizer and schedule) and train_loop.cpp (the epochs and checkpoints).
#include <cstdio>
#include <filesystem>
#include <optional>

#include "pictures.hpp"
#include "resume_flags.hpp"
#include "train_steps.hpp"

namespace tg::cli {
namespace {

// The run in one line ("lenet (lenet.tg) on mnist (DIR): 60000 training / 10000 test images, ...") and the
// model's summary.
void announce(const TrainOptions& o, Run& run, const TrainData& data, const Training& t, const Ranks& ranks) {
  const RunInfo& info = run.info;
  char batch_text[96];
  if (ranks.world == 1) {
    std::snprintf(batch_text, sizeof batch_text, "batch %zu", info.batch_size);
  } else {
    std::snprintf(batch_text, sizeof batch_text, "batch %zu per rank x %d ranks (MPI) = %zu per step",
                  info.batch_size, ranks.world, t.loader.global_batch_size());
  }
  say("%s (%s) on %s (%s): %zu training / %zu test images, %zu classes, %s, %s lr %g (%s, warm-up %g "
      "epochs), %s, seed %llu, augment %s, %d threads%s%s\n",
      info.model_name.c_str(), info.model_source.c_str(), info.dataset.c_str(), info.data_dir.c_str(),
      data.train->size(), data.test->size(), info.classes(), batch_text, info.optimizer.c_str(), info.lr,
      info.schedule.c_str(), info.schedule == "cosine" ? info.warmup_epochs : 0.0,
      optimizer_options_text(info).c_str(), static_cast<unsigned long long>(info.seed),
      info.augment.text().c_str(), o.threads, ranks.world == 1 ? "" : " per rank",
      precision() == Precision::bf16 ? ", bf16 mixed precision" : "");
  say("%s", run.model.summary(Shape{1, info.input[0], info.input[1], info.input[2]}).c_str());
  std::fflush(stdout);
}

void create_output_folders(const TrainOptions& o) {
  std::filesystem::create_directories(o.out_dir);
  const std::filesystem::path save_dir = std::filesystem::path(o.save_path).parent_path();
  if (!save_dir.empty()) std::filesystem::create_directories(save_dir);
}

// After the last epoch (rank 0): the profile, filters.png and mistakes.png, and what to run next.
void finish(const TrainOptions& o, Run& run, const ImageDataset& test, std::optional<Evaluation> last) {
  if (o.profile) {
    set_profiling(false);
    std::printf("\nprofile (training and evaluation):\n%s", profile_report().c_str());
  }
  if (!last) last = evaluate_model(run.model, test, run.info.classes());
  std::string files = "metrics.csv, chart.png";
  if (write_filters_png(run.model, o.out_dir + "/filters.png")) files += ", filters.png";
  if (write_mistakes_png(test, last->mistakes, run.info.class_names, o.out_dir + "/mistakes.png"))
    files += ", mistakes.png";
  std::printf("test accuracy %.2f%%\nsaved %s; %s in %s\n", 100 * last->accuracy, o.save_path.c_str(),
              files.c_str(), o.out_dir.c_str());
  std::printf("next: %s eval %s   |   %s predict %s IMAGE...\n", program_name().c_str(), o.save_path.c_str(),
              program_name().c_str(), o.save_path.c_str());
}

}  // namespace

int train(TrainOptions o) {
  const Ranks ranks{distributed::rank(), distributed::world_size()};
  set_quiet(!ranks.main());
  if (o.threads == 0) o.threads = std::max(1, num_threads() / distributed::local_world_size());
  set_num_threads(o.threads);
  set_precision(parse_precision(o.precision));  // before anything is read: a CPU without bf16 fails at once

  // What to train (a new run, or the checkpoint's), on what, and with which optimizer, loader and schedule.
  Run run = o.resume_path.empty() ? new_run(o, ranks) : resumed_run(o, ranks);
  const TrainData data = open_training_data(o, run);
  if (!run.resuming) run.info.flags = record_flags(o, run.info);
  Training training = start_training(o, run, *data.train, ranks);
  announce(o, run, data, training, ranks);
  set_profiling(o.profile);
  set_detect_anomaly(o.detect_anomaly);
  if (ranks.main()) create_output_folders(o);

  // The epochs: train, then (rank 0) evaluate and write the checkpoint, metrics.csv and chart.png. Ctrl-C
  // ends an epoch early with a checkpoint that resumes there.
  const StopSignals stop_signals;
  std::optional<Evaluation> last;
  for (int epoch = run.info.epoch + 1; epoch <= run.info.epochs; ++epoch) {
    const EpochSums sums = train_epoch(run, training, data.train->size(), epoch, ranks);
    if (sums.interrupted) {
      save_interrupted(o, run, training, sums, epoch, ranks);
      return 130;
    }
    if (!ranks.main()) continue;  // rank 0 evaluates and writes; the others go on to the next epoch
    last = evaluate_model(run.model, *data.test, run.info.classes());
    end_epoch(o, run, training, sums, *last, epoch);
  }
  if (ranks.main()) finish(o, run, *data.test, std::move(last));
  return 0;
}

}  // namespace tg::cli
