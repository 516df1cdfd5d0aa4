// train_mnist: trains lenet or convnet on MNIST / Fashion-MNIST, shows progress, evaluates after each epoch,
// and writes a checkpoint, a metrics CSV, a PNG of the first layer's filters and one of the test mistakes.
// Exit codes: 0 success, 1 data/file/numeric errors, 2 usage errors.
// Under `mpirun -np N train_mnist ...` it trains data-parallel (tg::distributed): --batch-size is per rank,
// each rank takes its slice of every global batch of N x batch-size, gradients are averaged each step, and
// rank 0 alone prints, evaluates and writes files. An error on any rank stops every rank (MPI_Abort).
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "models.hpp"

namespace {

// Rank 0 prints; the other ranks of an MPI job stay quiet.
bool g_quiet = false;
[[gnu::format(printf, 1, 2)]] void say(const char* format, ...) {
  if (g_quiet) return;
  va_list args;
  va_start(args, format);
  std::vprintf(format, args);
  va_end(args);
}

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct Config {
  std::string data_dir, dataset = "mnist", model = "lenet", schedule = "cosine", out_dir, save_path,
                        resume_path;
  int epochs = 3, threads = 0;  // 0: the machine's cores, split between this machine's ranks
  std::size_t batch_size = 64, limit = 0;
  double warmup_epochs = 0.3;
  float lr = 0.05f, momentum = 0.9f, weight_decay = 5e-4f;
  std::uint64_t seed = 1;
  bool profile = false, detect_anomaly = false;
};

struct EpochMetrics {
  double train_loss = 0, train_acc = 0, test_loss = 0, test_acc = 0, seconds = 0, images_per_s = 0;
  float lr = 0;
};

std::size_t argmax10(const float* row, std::size_t n) {
  return static_cast<std::size_t>(std::max_element(row, row + n) - row);
}

std::string format_eta(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%d:%02d", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  return buf;
}

// Test loss and accuracy in eval mode without recording; also the indices and predictions of mistakes.
struct Evaluation {
  double loss = 0, accuracy = 0;
  std::vector<std::pair<std::size_t, int>> mistakes;  // (test index, predicted class)
};
Evaluation evaluate(tg::Sequential& model, const tg::MNIST& test) {
  tg::NoGradGuard no_grad;
  model.eval();
  tg::DataLoader loader(test, {.batch_size = 1000, .shuffle = false});
  Evaluation e;
  std::size_t index = 0, correct = 0;
  for (const tg::Batch& batch : loader) {
    const tg::Tensor logits = model(batch.images);
    e.loss += tg::cross_entropy(logits, batch.labels).item() * static_cast<double>(batch.labels.size());
    const std::size_t classes = logits.shape()[1];
    for (std::size_t i = 0; i < batch.labels.size(); ++i, ++index) {
      const auto predicted = static_cast<int>(argmax10(logits.value().data() + i * classes, classes));
      if (predicted == batch.labels[i])
        ++correct;
      else
        e.mistakes.emplace_back(index, predicted);
    }
  }
  model.train();
  e.loss /= static_cast<double>(test.size());
  e.accuracy = static_cast<double>(correct) / static_cast<double>(test.size());
  return e;
}

// The first conv layer's filters (input channel 0), each scaled to 0..255 and enlarged 8x, in a row.
void write_filters_png(tg::Sequential& model, const std::string& path) {
  const tg::Array& w = model.at<tg::Conv2D>(0).weight.value();  // [Cout, Cin, Kh, Kw]
  const std::size_t count = w.shape()[0], kh = w.shape()[2], kw = w.shape()[3], zoom = 8, gap = 2;
  const std::size_t per_row = std::min<std::size_t>(count, 8), rows = (count + per_row - 1) / per_row;
  const std::size_t width = per_row * (kw * zoom + gap) + gap, height = rows * (kh * zoom + gap) + gap;
  std::vector<std::uint8_t> img(width * height, 128);
  for (std::size_t f = 0; f < count; ++f) {
    const float* k = w.data() + f * w.shape()[1] * kh * kw;
    const auto [lo, hi] = std::minmax_element(k, k + kh * kw);
    const float range = std::max(*hi - *lo, 1e-12f);
    const std::size_t x0 = gap + (f % per_row) * (kw * zoom + gap),
                      y0 = gap + (f / per_row) * (kh * zoom + gap);
    for (std::size_t y = 0; y < kh * zoom; ++y)
      for (std::size_t x = 0; x < kw * zoom; ++x)
        img[(y0 + y) * width + x0 + x] =
            static_cast<std::uint8_t>(255.f * (k[(y / zoom) * kw + x / zoom] - *lo) / range);
  }
  tg::write_png(path, img, width, height);
}

// Up to 100 misclassified test images in a 10-wide grid (row-major, in test order).
void write_mistakes_png(const tg::MNIST& test, const std::vector<std::pair<std::size_t, int>>& mistakes,
                        const std::string& path) {
  const std::size_t shown = std::min<std::size_t>(mistakes.size(), 100), per_row = 10;
  if (shown == 0) return;
  const std::size_t r = test.rows(), c = test.cols(), gap = 2;
  const std::size_t rows = (shown + per_row - 1) / per_row;
  const std::size_t width = per_row * (c + gap) + gap, height = rows * (r + gap) + gap;
  std::vector<std::uint8_t> img(width * height, 96);
  for (std::size_t m = 0; m < shown; ++m) {
    const std::uint8_t* px = test.pixels(mistakes[m].first);
    const std::size_t x0 = gap + (m % per_row) * (c + gap), y0 = gap + (m / per_row) * (r + gap);
    for (std::size_t y = 0; y < r; ++y)
      std::copy(px + y * c, px + (y + 1) * c, img.begin() + (y0 + y) * width + x0);
  }
  tg::write_png(path, img, width, height);
}

void write_metrics_csv(const std::vector<EpochMetrics>& rows, const std::string& path) {
  std::ostringstream csv;
  csv << "epoch,train_loss,train_accuracy,test_loss,test_accuracy,lr_end,seconds,images_per_second\n";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const EpochMetrics& m = rows[i];
    csv << i + 1 << ',' << m.train_loss << ',' << m.train_acc << ',' << m.test_loss << ',' << m.test_acc
        << ',' << m.lr << ',' << m.seconds << ',' << m.images_per_s << '\n';
  }
  const std::string text = csv.str();
  tg::write_file_atomically(path, {{text.data(), text.size()}});
}

int run(Config cfg) {
  namespace dist = tg::distributed;
  const int rank = dist::rank(), world = dist::world_size();
  const bool main_rank = rank == 0;
  g_quiet = !main_rank;
  if (cfg.threads == 0) cfg.threads = std::max(1, tg::num_threads() / dist::local_world_size());
  tg::set_num_threads(cfg.threads);
  tg::manual_seed(cfg.seed);
  const tg::MNISTOptions norm =
      cfg.dataset == "fashion" ? tg::MNISTOptions::fashion() : tg::MNISTOptions::mnist();
  tg::MNIST train(cfg.data_dir, tg::Split::Train, norm);
  tg::MNIST test(cfg.data_dir, tg::Split::Test, norm);
  if (cfg.limit > 0) train.keep_first(cfg.limit);
  tg::Sequential model = tg::apps::make_model(cfg.model);
  const std::vector<tg::Tensor> params = model.parameters();
  tg::SGD opt(params, {.lr = cfg.lr, .momentum = cfg.momentum, .weight_decay = cfg.weight_decay});
  // Sharded: every rank has the same number of steps per epoch (global batches of world x batch-size).
  tg::DataLoader loader(
      train,
      {.batch_size = cfg.batch_size, .shuffle = true, .seed = cfg.seed, .rank = rank, .world_size = world});
  const std::size_t steps_per_epoch = loader.num_batches();
  const std::size_t total_steps = steps_per_epoch * static_cast<std::size_t>(cfg.epochs);
  std::unique_ptr<tg::LRSchedule> schedule;
  if (cfg.schedule == "cosine") {
    const auto warmup = static_cast<std::size_t>(cfg.warmup_epochs * static_cast<double>(steps_per_epoch));
    schedule = std::make_unique<tg::CosineLR>(opt, total_steps, 0.f, std::min(warmup, total_steps - 1));
  }
  if (cfg.schedule == "step") schedule = std::make_unique<tg::StepLR>(opt, steps_per_epoch, 0.1f);

  int start_epoch = 0;
  std::vector<EpochMetrics> history;
  if (!cfg.resume_path.empty()) {
    const tg::TrainingState state = tg::load(model, cfg.resume_path);
    auto meta = [&](const std::string& key) {
      auto it = state.metadata.find(key);
      if (it == state.metadata.end())
        tg::fail(cfg.resume_path, ": not a training checkpoint (no '", key, "')");
      return it->second;
    };
    if (meta("model") != cfg.model)
      tg::fail(cfg.resume_path, ": holds a ", meta("model"), ", not a ", cfg.model);
    opt.load_state(state.optimizer);
    start_epoch = std::stoi(meta("epoch"));
    say("resuming from %s after epoch %d\n", cfg.resume_path.c_str(), start_epoch);
  }
  dist::broadcast_parameters(model);  // rank 0's parameters and buffers everywhere (no-op in one process)
  loader.set_epoch(static_cast<std::size_t>(start_epoch));
  if (schedule) schedule->set_step(static_cast<std::size_t>(start_epoch) * steps_per_epoch);

  char batch_text[96];
  if (world == 1) {
    std::snprintf(batch_text, sizeof batch_text, "batch %zu", cfg.batch_size);
  } else {
    std::snprintf(batch_text, sizeof batch_text, "batch %zu per rank x %d ranks (MPI) = %zu per step",
                  cfg.batch_size, world, loader.global_batch_size());
  }
  say("%s on %s: %zu training / %zu test images, %s, lr %g (%s, warm-up %g epochs), momentum %g, "
      "weight decay %g, seed %llu, %d threads%s\n",
      cfg.model.c_str(), cfg.dataset.c_str(), train.size(), test.size(), batch_text, cfg.lr,
      cfg.schedule.c_str(), cfg.schedule == "cosine" ? cfg.warmup_epochs : 0.0, cfg.momentum,
      cfg.weight_decay, static_cast<unsigned long long>(cfg.seed), cfg.threads,
      world == 1 ? "" : " per rank");
  say("%s", model.summary({1, 1, train.rows(), train.cols()}).c_str());
  std::fflush(stdout);
  const bool terminal = ::isatty(::fileno(stdout));
  tg::set_profiling(cfg.profile);
  tg::set_detect_anomaly(cfg.detect_anomaly);
  if (main_rank) std::filesystem::create_directories(cfg.out_dir);
  Evaluation last;

  for (int epoch = start_epoch + 1; epoch <= cfg.epochs; ++epoch) {
    const auto start = Clock::now();
    auto last_print = start;
    double loss_sum = 0;
    std::size_t seen = 0, correct = 0, step = 0;
    for (const tg::Batch& batch : loader) {
      const std::size_t b = batch.labels.size();  // 0 on some ranks in a short last global batch
      tg::Tensor logits, loss;
      float loss_value = 0.f;
      if (b > 0) {
        logits = model(batch.images);
        loss = tg::cross_entropy(logits, batch.labels);
        loss_value = loss.item();
        if (!std::isfinite(loss_value)) {
          tg::fail("the loss became ", loss_value, " at epoch ", epoch, ", step ", step + 1,
                   ": training diverged; try a smaller --lr (now ", opt.lr(), ")");
        }
      }
      opt.zero_grad();
      if (b > 0) loss.backward();
      dist::allreduce_gradients(params, b);  // the mean over all ranks' examples (no-op in one process)
      opt.step();
      if (schedule) schedule->step();
      ++step;
      loss_sum += loss_value * static_cast<double>(b);
      seen += b;
      for (std::size_t i = 0; i < b; ++i)
        correct += argmax10(logits.value().data() + i * 10, 10) == static_cast<std::size_t>(batch.labels[i]);
      const bool periodic = terminal ? seconds_since(last_print) > 0.25
                                     : step % std::max<std::size_t>(1, steps_per_epoch / 10) == 0;
      if (main_rank && (periodic || step == steps_per_epoch)) {
        // Rate and ETA over all ranks (seen_all); loss and accuracy of this rank's shard, until the epoch's
        // end.
        last_print = Clock::now();
        const std::size_t seen_all = std::min(step * loader.global_batch_size(), train.size());
        const double elapsed = seconds_since(start), rate = static_cast<double>(seen_all) / elapsed;
        const double eta = static_cast<double>(train.size() - seen_all) / rate;
        std::printf("%sepoch %d/%d [%5zu/%zu] loss %.4f acc %.2f%% | %.0f img/s | ETA %s%s",
                    terminal ? "\r" : "", epoch, cfg.epochs, step, steps_per_epoch,
                    loss_sum / static_cast<double>(seen),
                    100.0 * static_cast<double>(correct) / static_cast<double>(seen), rate,
                    format_eta(eta).c_str(), terminal ? "   " : "\n");
        std::fflush(stdout);
      }
    }
    EpochMetrics m;
    m.seconds = seconds_since(start);
    if (world > 1) {  // the epoch's training loss and accuracy over every rank's examples
      double totals[3] = {loss_sum, static_cast<double>(correct), static_cast<double>(seen)};
      dist::allreduce_sum(totals);
      loss_sum = totals[0];
      correct = static_cast<std::size_t>(totals[1]);
      seen = static_cast<std::size_t>(totals[2]);
    }
    if (!main_rank) continue;  // rank 0 evaluates and writes; the others go on to the next epoch
    m.train_loss = loss_sum / static_cast<double>(seen);
    m.train_acc = static_cast<double>(correct) / static_cast<double>(seen);
    m.images_per_s = static_cast<double>(seen) / m.seconds;
    m.lr = opt.lr();
    last = evaluate(model, test);
    m.test_loss = last.loss;
    m.test_acc = last.accuracy;
    history.push_back(m);
    std::printf(
        "%sepoch %d/%d: train loss %.4f acc %.2f%% | test loss %.4f acc %.2f%% | %.1f s, %.0f img/s\n",
        terminal ? "\n" : "", epoch, cfg.epochs, m.train_loss, 100 * m.train_acc, m.test_loss,
        100 * m.test_acc, m.seconds, m.images_per_s);
    std::fflush(stdout);
    tg::save(model, cfg.save_path,
             {opt.state(),
              {{"model", cfg.model},
               {"dataset", cfg.dataset},
               {"epoch", std::to_string(epoch)},
               {"test_accuracy", std::to_string(m.test_acc)}}});
    write_metrics_csv(history, cfg.out_dir + "/metrics.csv");
  }
  if (!main_rank) return 0;
  if (cfg.profile) {
    tg::set_profiling(false);
    std::printf("\nprofile (training and evaluation):\n%s", tg::profile_report().c_str());
  }
  if (history.empty()) last = evaluate(model, test);
  write_filters_png(model, cfg.out_dir + "/filters.png");
  write_mistakes_png(test, last.mistakes, cfg.out_dir + "/mistakes.png");
  std::printf("test accuracy %.2f%%\nsaved %s; metrics, filters.png and mistakes.png in %s\n",
              100 * last.accuracy, cfg.save_path.c_str(), cfg.out_dir.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  tg::distributed::Context mpi(argc,
                               argv);  // MPI_Init under mpirun (when built with MPI); MPI_Finalize at exit
  CLI::App app{"Train a CNN on MNIST or Fashion-MNIST with tapegrad"};
  Config cfg;
  auto finite_positive = CLI::Validator(
      [](std::string& s) {
        const float v = std::strtof(s.c_str(), nullptr);
        return std::isfinite(v) && v > 0 ? std::string() : "must be a finite number > 0, got " + s;
      },
      "FLOAT > 0");
  app.add_option("--data", cfg.data_dir,
                 "folder with the IDX files, raw or .gz (default .cache/mnist, or "
                 "/usr/share/datasets/fashion-mnist for --dataset fashion)");
  app.add_option("--dataset", cfg.dataset, "mnist or fashion")->check(CLI::IsMember({"mnist", "fashion"}));
  app.add_option("--model", cfg.model, "lenet or convnet")->check(CLI::IsMember(tg::apps::model_names()));
  app.add_option("--epochs", cfg.epochs, "passes over the training set")->check(CLI::Range(1, 1000));
  app.add_option("--batch-size", cfg.batch_size,
                 "examples per step; under mpirun, per rank (a step then takes "
                 "ranks x batch-size examples)")
      ->check(CLI::Range(1, 65536));
  app.add_option("--lr", cfg.lr, "learning rate at the start")->check(finite_positive);
  app.add_option("--momentum", cfg.momentum, "SGD momentum")->check(CLI::Range(0.0, 0.999));
  app.add_option("--weight-decay", cfg.weight_decay, "L2 penalty added to the gradients")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--schedule", cfg.schedule,
                 "learning-rate schedule: cosine (to 0 over the run), step (x0.1 per "
                 "epoch) or constant")
      ->check(CLI::IsMember({"cosine", "step", "constant"}));
  app.add_option("--warmup", cfg.warmup_epochs, "epochs of linear warm-up before the cosine schedule")
      ->check(CLI::Range(0.0, 100.0));
  app.add_option("--seed", cfg.seed, "seed of initialization and shuffling");
  app.add_option("--threads", cfg.threads,
                 "threads of tapegrad's pool; OpenBLAS stays single-threaded (default: "
                 "the cores; under mpirun, the cores / the ranks on this machine)")
      ->check(CLI::Range(1, 256));
  app.add_option("--out", cfg.out_dir,
                 "folder for metrics.csv, filters.png, mistakes.png (default runs/MODEL)");
  app.add_option("--save", cfg.save_path,
                 "checkpoint written after every epoch (default OUT/model.safetensors)");
  app.add_option("--resume", cfg.resume_path, "continue training from a checkpoint written by --save");
  app.add_option("--limit", cfg.limit, "train on the first N images only (0: all)");
  app.add_flag("--detect-anomaly", cfg.detect_anomaly,
               "check every op's output and gradients for NaN/Inf and stop at the first, naming the op");
  app.add_flag("--profile", cfg.profile,
               "print time per op type and per layer, forward and backward, at the end");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {  // every rank parses the same arguments; rank 0 tells
    const int code = tg::distributed::is_main() ? app.exit(e) : e.get_exit_code();
    return code == 0 ? 0 : 2;
  }
  if (cfg.data_dir.empty())
    cfg.data_dir = cfg.dataset == "fashion" ? "/usr/share/datasets/fashion-mnist" : ".cache/mnist";
  if (cfg.out_dir.empty()) cfg.out_dir = "runs/" + cfg.model;
  if (cfg.save_path.empty()) cfg.save_path = cfg.out_dir + "/model.safetensors";
  try {
    return run(cfg);
  } catch (const std::exception& e) {  // tg::Error and file-system errors: one line, exit 1
    const int world = tg::distributed::world_size();
    if (world == 1) {
      std::fprintf(stderr, "\ntrain_mnist: error: %s\n", e.what());
      return 1;
    }
    // The other ranks may be waiting for this one in a collective: stop them all.
    std::fprintf(stderr, "\ntrain_mnist: error on rank %d of %d: %s\n", tg::distributed::rank(), world,
                 e.what());
    std::fflush(stderr);
    tg::distributed::abort(1);
  }
}
