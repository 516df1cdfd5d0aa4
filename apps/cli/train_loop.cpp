// The training loop of `tapegrad train`: one epoch's steps between the MPI stop checks, its progress line and
// Ctrl-C; and the checkpoints after an epoch or an interruption (train_steps.hpp).
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <span>
#include <sstream>

#include "charts.hpp"
#include "train_steps.hpp"

namespace tg::cli {
namespace {

namespace dist = tg::distributed;
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::size_t argmax(const float* row, std::size_t n) {
  return static_cast<std::size_t>(std::max_element(row, row + n) - row);
}

std::string format_eta(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%d:%02d", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  return buf;
}

// ---- Ctrl-C: the first SIGINT/SIGTERM asks the loop to stop after the step; a second one quits at once.
std::atomic<int> g_signals{0};

extern "C" void on_stop_signal(int sig) {
  if (g_signals.fetch_add(1) > 0) {  // the second: the default action (the process ends by the signal)
    remove_unfinished_file();        // a checkpoint being written: its temp file goes, the old file stays
    std::signal(sig, SIG_DFL);
    std::raise(sig);
    return;
  }
  static const char message[] =
      "\ninterrupted: finishing this step and writing a checkpoint (press Ctrl-C again to quit at once)\n";
  [[maybe_unused]] const auto n = ::write(STDERR_FILENO, message, sizeof message - 1);
}

// One training step on this rank's batch (possibly empty in a short last global batch): forward, backward,
// the gradients averaged over the ranks, the update and the schedule. Adds the batch's loss and right
// answers to `sums`.
void train_step(Sequential& model, Training& t, const Batch& batch, std::size_t classes, int epoch,
                EpochSums& sums) {
  const std::size_t b = batch.labels.size();
  Tensor logits, loss;
  float loss_value = 0.f;
  if (b > 0) {
    logits = model(batch.images);
    loss = cross_entropy(logits, batch.labels);
    loss_value = loss.item();
    if (!std::isfinite(loss_value)) {
      fail("the loss became ", loss_value, " at epoch ", epoch, ", step ", sums.steps + 1,
           ": training diverged; try a smaller --lr (now ", t.optimizer->lr(), ")");
    }
  }
  t.optimizer->zero_grad();
  if (b > 0) loss.backward();
  dist::allreduce_gradients(t.params, b);  // the mean over all ranks' examples (no-op in one process)
  t.optimizer->step();
  if (t.schedule) t.schedule->step();
  ++sums.steps;
  sums.loss_sum += loss_value * static_cast<double>(b);
  sums.seen += b;
  for (std::size_t i = 0; i < b; ++i)
    sums.correct +=
        argmax(logits.value().data() + i * classes, classes) == static_cast<std::size_t>(batch.labels[i]);
}

// Ctrl-C on any rank stops every rank after the same step.
bool stop_requested(const Ranks& ranks) {
  double stop = StopSignals::requested() ? 1.0 : 0.0;
  if (ranks.world > 1) dist::allreduce_sum(std::span<double>(&stop, 1));
  return stop > 0;
}

void write_metrics_csv(const std::vector<EpochRecord>& rows, const std::string& path) {
  std::ostringstream csv;
  csv << "epoch,train_loss,train_accuracy,test_loss,test_accuracy,lr_end,seconds,images_per_second\n";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const EpochRecord& m = rows[i];
    csv << i + 1 << ',' << m.train_loss << ',' << m.train_accuracy << ',' << m.test_loss << ','
        << m.test_accuracy << ',' << m.lr_end << ',' << m.seconds << ',' << m.images_per_second << '\n';
  }
  const std::string text = csv.str();
  write_file_atomically(path, {{text.data(), text.size()}});
}

// chart.png's line under its title: "cifarnet on folder /data/photos, sgd lr 0.05, batch 64, augment flip".
std::string chart_subtitle(const RunInfo& info) {
  std::ostringstream s;
  s << info.model_name << " on " << info.dataset << ' ' << info.data_dir << ", " << info.optimizer << " lr "
    << info.lr << ", batch " << info.batch_size;
  if (!info.augment.none()) s << ", augment " << info.augment.text();
  return s.str();
}

}  // namespace

StopSignals::StopSignals() {
  g_signals = 0;
  struct sigaction action = {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, &old_int_);
  sigaction(SIGTERM, &action, &old_term_);
}

StopSignals::~StopSignals() {
  sigaction(SIGINT, &old_int_, nullptr);
  sigaction(SIGTERM, &old_term_, nullptr);
}

bool StopSignals::requested() { return g_signals.load() > 0; }

bool stdout_is_terminal() { return ::isatty(::fileno(stdout)); }

EpochSums train_epoch(Run& run, Training& t, std::size_t train_size, int epoch, const Ranks& ranks) {
  const RunInfo& info = run.info;
  const bool terminal = stdout_is_terminal();
  const auto start = Clock::now();
  auto last_print = start;
  EpochSums sums;
  const std::size_t first_step = t.first_step;
  double seconds_before = 0;
  if (first_step > 0) {  // the interrupted epoch: its sums so far (rank 0 holds the totals of every rank)
    sums.steps = first_step;
    seconds_before = info.partial_seconds;
    if (ranks.main()) {
      sums.loss_sum = info.partial_loss_sum;
      sums.seen = info.partial_seen;
      sums.correct = info.partial_correct;
    }
  }
  for (auto it = t.loader.begin_at(first_step); it != t.loader.end(); ++it) {
    train_step(run.model, t, *it, info.classes(), epoch, sums);
    if (sums.steps < t.steps_per_epoch && stop_requested(ranks)) {
      sums.interrupted = true;
      break;
    }
    const bool periodic = terminal ? seconds_since(last_print) > 0.25
                                   : sums.steps % std::max<std::size_t>(1, t.steps_per_epoch / 10) == 0;
    if (ranks.main() && (periodic || sums.steps == t.steps_per_epoch)) {
      // Rate and ETA over all ranks (seen_all); loss and accuracy of this rank's shard, until the epoch's
      // end.
      last_print = Clock::now();
      const std::size_t seen_all = std::min(sums.steps * t.loader.global_batch_size(), train_size);
      const std::size_t seen_now = seen_all - std::min(first_step * t.loader.global_batch_size(), seen_all);
      const double elapsed = seconds_since(start),
                   rate = static_cast<double>(seen_now) / std::max(elapsed, 1e-9);
      const double eta = static_cast<double>(train_size - seen_all) / std::max(rate, 1e-9);
      const double seen = static_cast<double>(std::max<std::size_t>(sums.seen, 1));
      std::printf("%sepoch %d/%d [%5zu/%zu] loss %.4f acc %.2f%% | %.0f img/s | ETA %s%s",
                  terminal ? "\r" : "", epoch, info.epochs, sums.steps, t.steps_per_epoch,
                  sums.loss_sum / seen, 100.0 * static_cast<double>(sums.correct) / seen, rate,
                  format_eta(eta).c_str(), terminal ? "   " : "\n");
      std::fflush(stdout);
    }
  }
  sums.seconds = seconds_before + seconds_since(start);
  if (ranks.world >
      1) {  // the epoch's (or, interrupted, the partial epoch's) sums over every rank's examples
    double totals[3] = {sums.loss_sum, static_cast<double>(sums.correct), static_cast<double>(sums.seen)};
    dist::allreduce_sum(totals);
    sums.loss_sum = totals[0];
    sums.correct = static_cast<std::size_t>(totals[1]);
    sums.seen = static_cast<std::size_t>(totals[2]);
  }
  // Batch norm's running statistics: each rank's come from its own batches; their mean over ranks, before
  // they are used or saved, leaves every rank with the same (core/distributed/distributed.hpp says why once
  // per epoch equals every step). No-op in one process or without buffers.
  dist::average_values(run.model.buffers());
  t.first_step = 0;
  return sums;
}

void end_epoch(const TrainOptions& o, Run& run, const Training& t, const EpochSums& sums,
               const Evaluation& test, int epoch) {
  RunInfo& info = run.info;
  EpochRecord m;
  m.seconds = sums.seconds;
  m.train_loss = sums.loss_sum / static_cast<double>(sums.seen);
  m.train_accuracy = static_cast<double>(sums.correct) / static_cast<double>(sums.seen);
  m.images_per_second = static_cast<double>(sums.seen) / m.seconds;
  m.lr_end = t.optimizer->lr();
  m.test_loss = test.loss;
  m.test_accuracy = test.accuracy;
  info.history.push_back(m);
  std::printf("%sepoch %d/%d: train loss %.4f acc %.2f%% | test loss %.4f acc %.2f%% | %.1f s, %.0f img/s\n",
              stdout_is_terminal() ? "\n" : "", epoch, info.epochs, m.train_loss, 100 * m.train_accuracy,
              m.test_loss, 100 * m.test_accuracy, m.seconds, m.images_per_second);
  std::fflush(stdout);
  info.epoch = epoch;
  info.step_in_epoch = 0;
  info.partial_loss_sum = info.partial_seconds = 0;
  info.partial_seen = info.partial_correct = 0;
  info.generator = default_generator().state();
  save(run.model, o.save_path, {t.optimizer->state(), to_metadata(info)});
  write_metrics_csv(info.history, o.out_dir + "/metrics.csv");
  write_training_chart(info.history, o.out_dir + "/chart.png", chart_subtitle(info));
}

void save_interrupted(const TrainOptions& o, Run& run, const Training& t, const EpochSums& sums, int epoch,
                      const Ranks& ranks) {
  RunInfo& info = run.info;
  info.epoch = epoch - 1;
  info.step_in_epoch = sums.steps;
  info.partial_loss_sum = sums.loss_sum;
  info.partial_seen = sums.seen;
  info.partial_correct = sums.correct;
  info.partial_seconds = sums.seconds;
  info.generator = default_generator().state();
  if (!ranks.main()) return;
  save(run.model, o.save_path, {t.optimizer->state(), to_metadata(info)});
  write_metrics_csv(info.history, o.out_dir + "/metrics.csv");
  std::printf("%sinterrupted at epoch %d/%d, step %zu/%zu: saved %s; continue with\n  %s train --resume %s\n",
              stdout_is_terminal() ? "\n" : "", epoch, info.epochs, sums.steps, t.steps_per_epoch,
              o.save_path.c_str(), program_name().c_str(), o.save_path.c_str());
  std::fflush(stdout);
}

}  // namespace tg::cli
