// tapegrad train: trains a model file (or a built-in model) on a data set, shows progress, evaluates after
// each epoch, and writes a self-describing checkpoint (run_checkpoint.hpp), a metrics CSV, a PNG of the first
// conv layer's filters and one of the test mistakes. Under `mpirun -np N tapegrad train ...` it trains
// data-parallel (tg::distributed): --batch-size is per rank, each rank takes its slice of every global batch
// of N x batch-size, gradients are averaged each step, and rank 0 alone prints, evaluates and writes files.
// An error on any rank stops every rank (cli.cpp). Ctrl-C (SIGINT or SIGTERM) finishes the step, writes a
// checkpoint that resumes exactly there, exits 130.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <sstream>

#include "charts.hpp"
#include "commands.hpp"
#include "evaluation.hpp"
#include "models.hpp"
#include "pictures.hpp"
#include "run_checkpoint.hpp"

namespace tg::cli {
namespace {

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
    std::signal(sig, SIG_DFL);
    std::raise(sig);
    return;
  }
  static const char message[] =
      "\ninterrupted: finishing this step and writing a checkpoint (press Ctrl-C again to quit at once)\n";
  [[maybe_unused]] const auto n = ::write(STDERR_FILENO, message, sizeof message - 1);
}

// Installs the handler for the life of a training loop, then puts back what was there.
class StopSignals {
 public:
  StopSignals() {
    g_signals = 0;
    struct sigaction action = {};
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &old_int_);
    sigaction(SIGTERM, &action, &old_term_);
  }
  ~StopSignals() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
  static bool requested() { return g_signals.load() > 0; }

 private:
  struct sigaction old_int_ = {}, old_term_ = {};
};

// ---- evaluation and the files beside the checkpoint

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

// ---- --resume: what the checkpoint fixes, and what the command line may change

template <class... Parts>
[[noreturn]] void throw_usage(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  throw UsageError(out.str());
}

// --momentum is sgd's, --betas and --eps adam's and adamw's: a flag of another optimizer is an error.
void check_optimizer_flags(const TrainOptions& o, const std::string& optimizer) {
  const bool sgd = optimizer == "sgd";
  for (const char* flag : {"--momentum", "--betas", "--eps"}) {
    if (o.given.count(flag) && sgd != (std::string(flag) == "--momentum")) {
      throw_usage(flag, " is for ", sgd ? "adam and adamw" : "sgd", ", and this run's optimizer is ",
                  optimizer,
                  sgd ? " (choose --optimizer adam or adamw to set it)"
                      : " (adam and adamw take --betas B1,B2 and --eps instead)");
    }
  }
}

// The optimizer and its options for a new run: the flags given, else the optimizer's defaults (sgd's are
// TrainOptions'; adam's and adamw's PyTorch's: lr 1e-3, weight decay 0 and 1e-2).
void set_optimizer_options(RunInfo& info, const TrainOptions& o) {
  check_optimizer_flags(o, o.optimizer);
  info.optimizer = o.optimizer;
  info.lr = o.lr;
  info.weight_decay = o.weight_decay;
  if (o.optimizer == "sgd") {
    info.momentum = o.momentum;
    return;
  }
  if (!o.given.count("--lr")) info.lr = 1e-3f;
  if (!o.given.count("--weight-decay")) info.weight_decay = o.optimizer == "adamw" ? 1e-2f : 0.f;
  info.momentum = 0.f;
  info.beta1 = o.beta1;
  info.beta2 = o.beta2;
  info.eps = o.eps;
}

std::unique_ptr<Optimizer> make_optimizer(const std::vector<Tensor>& params, const RunInfo& info) {
  if (info.optimizer == "adam") {
    return std::make_unique<Adam>(params, AdamOptions{.lr = info.lr,
                                                      .beta1 = info.beta1,
                                                      .beta2 = info.beta2,
                                                      .eps = info.eps,
                                                      .weight_decay = info.weight_decay});
  }
  if (info.optimizer == "adamw") {
    return std::make_unique<AdamW>(params, AdamWOptions{.lr = info.lr,
                                                        .beta1 = info.beta1,
                                                        .beta2 = info.beta2,
                                                        .eps = info.eps,
                                                        .weight_decay = info.weight_decay});
  }
  return std::make_unique<SGD>(
      params, SGDOptions{.lr = info.lr, .momentum = info.momentum, .weight_decay = info.weight_decay});
}

// "momentum 0.9, weight decay 0.0005" or "betas 0.9, 0.999, eps 1e-08, weight decay 0.01".
std::string optimizer_options_text(const RunInfo& info) {
  char text[160];
  if (info.optimizer == "sgd") {
    std::snprintf(text, sizeof text, "momentum %g, weight decay %g", info.momentum, info.weight_decay);
  } else {
    std::snprintf(text, sizeof text, "betas %g, %g, eps %g, %sweight decay %g", info.beta1, info.beta2,
                  info.eps, info.optimizer == "adamw" ? "decoupled " : "", info.weight_decay);
  }
  return text;
}

// --image-size, --channels, --val-split and --skip-bad-images are for image folders; a folder without train/
// and test/ needs --val-split.
void check_folder_flags(const TrainOptions& o, const std::string& dataset) {
  if (dataset != "folder") {
    for (const char* flag : {"--image-size", "--channels", "--val-split", "--skip-bad-images"}) {
      if (o.given.count(flag))
        throw_usage(flag, " is for folders of images by class; ", o.data_dir, " holds ", dataset, " data");
    }
    return;
  }
  const FolderLayout layout = image_folder_layout(o.data_dir);
  if (layout == FolderLayout::Flat && o.val_split == 0) {
    throw_usage(o.data_dir, " holds class folders but no train/ and test/ folders: hold out a share of each ",
                "class for testing with --val-split F (e.g. --val-split 0.2), or split the images into ",
                o.data_dir, "/train/<class>/ and ", o.data_dir, "/test/<class>/");
  }
  if (layout == FolderLayout::Split)
    image_folder_test_root(o.data_dir);  // before the training images are read
  if (layout == FolderLayout::Split && o.val_split > 0) {
    throw_usage(o.data_dir,
                " has train/ and test/ folders, so the test images are given; --val-split is for ",
                "one folder of class folders");
  }
}

// --augment's value; a bad one is a usage error (exit 2).
Augmentation augment_flag(const TrainOptions& o) {
  try {
    return parse_augmentation(o.augment);
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
}

// The flags a resumed run takes from its checkpoint; passing one with another value is an error.
void check_resume_flags(const TrainOptions& o, const RunInfo& info, const std::string& model_name) {
  auto refuse = [&](const char* flag, const std::string& theirs, const std::string& ours) {
    if (o.given.count(flag) && theirs != ours) {
      throw_usage(
          o.resume_path, " was trained with ", flag, " ", theirs, ", not ", ours,
          "; a resumed run keeps the checkpoint's ", flag,
          " (start a new run to change it; on --resume only --epochs, --data, --out, --save, --threads, "
          "--profile and --detect-anomaly may change)");
    }
  };
  auto text = [](auto v) {
    std::ostringstream s;
    s << v;
    return s.str();
  };
  refuse("--model", info.model_name, model_name);
  refuse("--optimizer", info.optimizer, o.optimizer);
  check_optimizer_flags(o, info.optimizer);
  refuse("--lr", text(info.lr), text(o.lr));
  refuse("--momentum", text(info.momentum), text(o.momentum));
  refuse("--betas", text(info.beta1) + "," + text(info.beta2), text(o.beta1) + "," + text(o.beta2));
  refuse("--eps", text(info.eps), text(o.eps));
  refuse("--weight-decay", text(info.weight_decay), text(o.weight_decay));
  refuse("--schedule", info.schedule, o.schedule);
  refuse("--warmup", text(info.warmup_epochs), text(o.warmup_epochs));
  refuse("--batch-size", text(info.batch_size), text(o.batch_size));
  refuse("--limit", text(info.limit), text(o.limit));
  refuse("--seed", text(info.seed), text(o.seed));
  refuse("--dataset", info.dataset, o.dataset);
  refuse("--val-split", text(info.val_split), text(o.val_split));
  if (o.given.count("--skip-bad-images") && !info.skip_bad_images) {
    throw_usage(o.resume_path,
                " was trained without --skip-bad-images; a resumed run reads the images as it did (",
                "start a new run to skip bad images)");
  }
  if (o.given.count("--image-size") &&
      (o.image_rows != info.input.at(1) || o.image_cols != info.input.at(2))) {
    refuse("--image-size", text(info.input.at(1)) + "x" + text(info.input.at(2)),
           text(o.image_rows) + "x" + text(o.image_cols));
  }
  if (o.given.count("--channels")) refuse("--channels", text(info.input.at(0)), text(o.image_channels));
  refuse("--augment", info.augment.text(), augment_flag(o).text());
}

}  // namespace

int train(TrainOptions o) {
  namespace dist = tg::distributed;
  const int rank = dist::rank(), world = dist::world_size();
  const bool main_rank = rank == 0;
  set_quiet(!main_rank);
  if (o.threads == 0) o.threads = std::max(1, num_threads() / dist::local_world_size());
  set_num_threads(o.threads);
  const Augmentation augment = augment_flag(o);

  // What to train: a new run from --model, or the checkpoint's run (its model text, options and position).
  RunInfo info;
  Sequential model;
  TrainingState resumed;
  if (!o.resume_path.empty()) {
    Checkpoint ckpt = open_checkpoint(o.resume_path);
    info = std::move(ckpt.info);
    model = std::move(ckpt.model);
    resumed = std::move(ckpt.state);
    std::string model_name = info.model_name;
    if (o.given.count("--model")) model_name = find_model(o.model).name;
    check_resume_flags(o, info, model_name);
    if (o.given.count("--model") && find_model(o.model).text != info.model_text) {
      throw_usage(o.resume_path, " holds a different ", model_name, " than --model ", o.model,
                  " (the model files differ); resume without --model to continue the checkpoint's");
    }
    if (info.world_size != world && info.step_in_epoch > 0) {
      fail(o.resume_path, " stopped mid-epoch on ", info.world_size,
           " process(es) (MPI ranks); this run has ", world,
           ": resume it with the same number so that the rest of the epoch has the same batches");
    }
    if (o.given.count("--epochs")) info.epochs = o.epochs;
    if (info.epoch >= info.epochs) {
      throw_usage(o.resume_path, " is already at epoch ", info.epoch, " of ", info.epochs,
                  "; nothing is left to train: pass --epochs N with N > ", info.epoch, " to train further");
    }
    if (o.given.count("--data")) info.data_dir = o.data_dir;
  } else {
    const ModelText text = find_model(o.model);
    const DataSpec spec = data_spec(o.dataset, o.data_dir);
    info.model_name = text.name;
    info.model_source = text.source;
    info.model_text = text.text;
    info.dataset = spec.dataset;
    info.data_dir = o.data_dir;
    info.augment = augment;
    info.class_names = spec.class_names;
    if (spec.dataset == "mnist" || spec.dataset == "fashion") {  // others': from the training set, below
      info.mean = {spec.normalization.mean};
      info.std = {spec.normalization.std};
    }
    check_folder_flags(o, spec.dataset);
    info.val_split = o.val_split;
    info.skip_bad_images = o.skip_bad_images;
    set_optimizer_options(info, o);
    info.schedule = o.schedule;
    info.warmup_epochs = o.warmup_epochs;
    info.batch_size = o.batch_size;
    info.limit = o.limit;
    info.seed = o.seed;
    info.world_size = world;
    info.epochs = o.epochs;
  }

  // A resumed folder run converts its images as the first run did (size, channels, classes); a new one finds
  // them from the images unless --image-size / --channels say.
  DataRequest request{
      .dataset = info.dataset,
      .dir = info.data_dir,
      .options = {.rows = o.image_rows,
                  .cols = o.image_cols,
                  .channels = o.image_channels,
                  .val_split = info.val_split,
                  .seed = info.seed,
                  .skip_bad_images = info.skip_bad_images,
                  .limit = info.limit,  // a folder decodes only those (others: keep_first below)
                  .mean = info.mean,
                  .std = info.std}};
  ImageFolderOptions& options = request.options;
  if (!o.resume_path.empty() && info.dataset == "folder") {
    options.channels = info.input[0];
    options.rows = info.input[1];
    options.cols = info.input[2];
    options.classes = info.class_names;
  }
  std::unique_ptr<ImageDataset> train_set = open_dataset(request, Split::Train);
  if (info.mean
          .empty()) {  // a new CIFAR-10 or folder run: its training images' (a folder's: the --limit ones)
    info.mean = train_set->channel_mean();
    info.std = train_set->channel_std();
  }
  if (const auto* folder = dynamic_cast<const ImageFolder*>(train_set.get());
      folder && info.class_names.empty())
    info.class_names = folder->class_names();
  // The test split as the training split came out: its size, channels, classes and normalization.
  options.mean = info.mean;
  options.std = info.std;
  options.channels = train_set->channels();
  options.rows = train_set->rows();
  options.cols = train_set->cols();
  options.classes = info.class_names;
  options.limit = 0;
  const std::unique_ptr<ImageDataset> test_set = open_dataset(request, Split::Test);
  if (info.limit > 0) train_set->keep_first(info.limit);
  const Shape input{train_set->channels(), train_set->rows(), train_set->cols()};
  if (o.resume_path.empty()) {
    manual_seed(info.seed);
    info.input = input;
    // The model file's errors name its lines ("net.tg:9: linear 120: input is [16, 5, 5]; add 'flatten'").
    model = model_from_text(info.model_text, info.input, static_cast<int>(info.classes()), info.model_source);
  } else if (input != info.input) {
    fail(info.data_dir, " has ", input[0], "x", input[1], "x", input[2], " images; ", o.resume_path,
         " was trained on ", info.input_text());
  }

  const std::vector<Tensor> params = model.parameters();
  const std::unique_ptr<Optimizer> optimizer = make_optimizer(params, info);
  Optimizer& opt = *optimizer;
  // Sharded: every rank has the same number of steps per epoch (global batches of world x batch-size).
  DataLoader loader(*train_set, {.batch_size = info.batch_size,
                                 .shuffle = true,
                                 .seed = info.seed,
                                 .rank = rank,
                                 .world_size = world,
                                 .augment = info.augment});
  const std::size_t steps_per_epoch = loader.num_batches();
  if (!o.resume_path.empty() && info.step_in_epoch > 0 && steps_per_epoch != info.steps_per_epoch) {
    fail(o.resume_path, " was trained with ", info.steps_per_epoch, " steps per epoch; ", info.data_dir,
         " gives ", steps_per_epoch, " (a different training set?)");
  }
  if (!o.resume_path.empty() && info.world_size != world) {
    say("note: %s was trained on %d process(es), this run has %d: the batches from here on differ from the "
        "original run's\n",
        o.resume_path.c_str(), info.world_size, world);
  }
  info.world_size = world;
  info.steps_per_epoch = steps_per_epoch;
  const std::size_t total_steps = steps_per_epoch * static_cast<std::size_t>(info.epochs);
  std::unique_ptr<LRSchedule> schedule;
  if (info.schedule == "cosine") {
    const auto warmup = static_cast<std::size_t>(info.warmup_epochs * static_cast<double>(steps_per_epoch));
    schedule = std::make_unique<CosineLR>(opt, total_steps, 0.f, std::min(warmup, total_steps - 1));
  }
  if (info.schedule == "step") schedule = std::make_unique<StepLR>(opt, steps_per_epoch, 0.1f);

  const std::size_t start_epoch = static_cast<std::size_t>(info.epoch);
  std::size_t first_step = 0;
  if (!o.resume_path.empty()) {
    opt.load_state(resumed.optimizer);
    first_step = info.step_in_epoch;
    if (!info.generator.empty()) default_generator().set_state(info.generator);
    say("resuming %s: %s (%s) after epoch %zu of %d%s; restored the weights, the %s state (lr %g, %s), "
        "the %s schedule, batch size %zu, seed %llu; --epochs, --data, --out, --save and --threads may "
        "change on resume\n",
        o.resume_path.c_str(), info.model_name.c_str(), info.model_source.c_str(), start_epoch, info.epochs,
        first_step ? (", step " + std::to_string(first_step) + " of epoch " + std::to_string(start_epoch + 1))
                         .c_str()
                   : "",
        info.optimizer.c_str(), info.lr, optimizer_options_text(info).c_str(), info.schedule.c_str(),
        info.batch_size, static_cast<unsigned long long>(info.seed));
  }
  dist::broadcast_parameters(model);  // rank 0's parameters and buffers everywhere (no-op in one process)
  loader.set_epoch(start_epoch);
  if (schedule) schedule->set_step(start_epoch * steps_per_epoch + first_step);

  char batch_text[96];
  if (world == 1) {
    std::snprintf(batch_text, sizeof batch_text, "batch %zu", info.batch_size);
  } else {
    std::snprintf(batch_text, sizeof batch_text, "batch %zu per rank x %d ranks (MPI) = %zu per step",
                  info.batch_size, world, loader.global_batch_size());
  }
  say("%s (%s) on %s (%s): %zu training / %zu test images, %zu classes, %s, %s lr %g (%s, warm-up %g "
      "epochs), %s, seed %llu, augment %s, %d threads%s\n",
      info.model_name.c_str(), info.model_source.c_str(), info.dataset.c_str(), info.data_dir.c_str(),
      train_set->size(), test_set->size(), info.classes(), batch_text, info.optimizer.c_str(), info.lr,
      info.schedule.c_str(), info.schedule == "cosine" ? info.warmup_epochs : 0.0,
      optimizer_options_text(info).c_str(), static_cast<unsigned long long>(info.seed),
      info.augment.text().c_str(), o.threads, world == 1 ? "" : " per rank");
  say("%s", model.summary(Shape{1, input[0], input[1], input[2]}).c_str());
  std::fflush(stdout);
  const bool terminal = ::isatty(::fileno(stdout));
  set_profiling(o.profile);
  set_detect_anomaly(o.detect_anomaly);
  if (main_rank) std::filesystem::create_directories(o.out_dir);
  std::filesystem::path save_dir = std::filesystem::path(o.save_path).parent_path();
  if (main_rank && !save_dir.empty()) std::filesystem::create_directories(save_dir);
  const std::size_t classes = info.classes();
  Evaluation last;
  bool evaluated = false;
  const StopSignals stop_signals;

  for (int epoch = static_cast<int>(start_epoch) + 1; epoch <= info.epochs; ++epoch) {
    const auto start = Clock::now();
    auto last_print = start;
    double loss_sum = 0, seconds_before = 0;
    std::size_t seen = 0, correct = 0, step = 0;
    if (first_step > 0) {  // the interrupted epoch: its sums so far (rank 0 holds the totals of every rank)
      step = first_step;
      seconds_before = info.partial_seconds;
      if (main_rank) {
        loss_sum = info.partial_loss_sum;
        seen = info.partial_seen;
        correct = info.partial_correct;
      }
    }
    bool interrupted = false;
    for (auto it = loader.begin_at(first_step); it != loader.end(); ++it) {
      const Batch& batch = *it;
      const std::size_t b = batch.labels.size();  // 0 on some ranks in a short last global batch
      Tensor logits, loss;
      float loss_value = 0.f;
      if (b > 0) {
        logits = model(batch.images);
        loss = cross_entropy(logits, batch.labels);
        loss_value = loss.item();
        if (!std::isfinite(loss_value)) {
          fail("the loss became ", loss_value, " at epoch ", epoch, ", step ", step + 1,
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
        correct +=
            argmax(logits.value().data() + i * classes, classes) == static_cast<std::size_t>(batch.labels[i]);
      if (step < steps_per_epoch) {  // Ctrl-C on any rank stops every rank after the same step
        double stop = StopSignals::requested() ? 1.0 : 0.0;
        if (world > 1) dist::allreduce_sum(std::span<double>(&stop, 1));
        if (stop > 0) {
          interrupted = true;
          break;
        }
      }
      const bool periodic = terminal ? seconds_since(last_print) > 0.25
                                     : step % std::max<std::size_t>(1, steps_per_epoch / 10) == 0;
      if (main_rank && (periodic || step == steps_per_epoch)) {
        // Rate and ETA over all ranks (seen_all); loss and accuracy of this rank's shard, until the epoch's
        // end.
        last_print = Clock::now();
        const std::size_t seen_all = std::min(step * loader.global_batch_size(), train_set->size());
        const std::size_t seen_now = seen_all - std::min(first_step * loader.global_batch_size(), seen_all);
        const double elapsed = seconds_since(start),
                     rate = static_cast<double>(seen_now) / std::max(elapsed, 1e-9);
        const double eta = static_cast<double>(train_set->size() - seen_all) / std::max(rate, 1e-9);
        std::printf(
            "%sepoch %d/%d [%5zu/%zu] loss %.4f acc %.2f%% | %.0f img/s | ETA %s%s", terminal ? "\r" : "",
            epoch, info.epochs, step, steps_per_epoch,
            loss_sum / static_cast<double>(std::max<std::size_t>(seen, 1)),
            100.0 * static_cast<double>(correct) / static_cast<double>(std::max<std::size_t>(seen, 1)), rate,
            format_eta(eta).c_str(), terminal ? "   " : "\n");
        std::fflush(stdout);
      }
    }
    const double seconds = seconds_before + seconds_since(start);
    if (world > 1) {  // the epoch's (or, interrupted, the partial epoch's) sums over every rank's examples
      double totals[3] = {loss_sum, static_cast<double>(correct), static_cast<double>(seen)};
      dist::allreduce_sum(totals);
      loss_sum = totals[0];
      correct = static_cast<std::size_t>(totals[1]);
      seen = static_cast<std::size_t>(totals[2]);
    }
    // Batch norm's running statistics: each rank's come from its own batches; their mean over ranks, before
    // they are used or saved, leaves every rank with the same (core/distributed/distributed.hpp says why
    // once per epoch equals every step). No-op in one process or without buffers.
    dist::average_values(model.buffers());
    first_step = 0;
    if (interrupted) {
      info.epoch = epoch - 1;
      info.step_in_epoch = step;
      info.partial_loss_sum = loss_sum;
      info.partial_seen = seen;
      info.partial_correct = correct;
      info.partial_seconds = seconds;
      info.generator = default_generator().state();
      if (main_rank) {
        save(model, o.save_path, {opt.state(), to_metadata(info)});
        write_metrics_csv(info.history, o.out_dir + "/metrics.csv");
        std::printf(
            "%sinterrupted at epoch %d/%d, step %zu/%zu: saved %s; continue with\n  %s train --resume %s\n",
            terminal ? "\n" : "", epoch, info.epochs, step, steps_per_epoch, o.save_path.c_str(),
            program_name().c_str(), o.save_path.c_str());
        std::fflush(stdout);
      }
      return 130;
    }
    if (!main_rank) continue;  // rank 0 evaluates and writes; the others go on to the next epoch
    EpochRecord m;
    m.seconds = seconds;
    m.train_loss = loss_sum / static_cast<double>(seen);
    m.train_accuracy = static_cast<double>(correct) / static_cast<double>(seen);
    m.images_per_second = static_cast<double>(seen) / m.seconds;
    m.lr_end = opt.lr();
    last = evaluate_model(model, *test_set, classes);
    evaluated = true;
    m.test_loss = last.loss;
    m.test_accuracy = last.accuracy;
    info.history.push_back(m);
    std::printf(
        "%sepoch %d/%d: train loss %.4f acc %.2f%% | test loss %.4f acc %.2f%% | %.1f s, %.0f img/s\n",
        terminal ? "\n" : "", epoch, info.epochs, m.train_loss, 100 * m.train_accuracy, m.test_loss,
        100 * m.test_accuracy, m.seconds, m.images_per_second);
    std::fflush(stdout);
    info.epoch = epoch;
    info.step_in_epoch = 0;
    info.partial_loss_sum = info.partial_seconds = 0;
    info.partial_seen = info.partial_correct = 0;
    info.generator = default_generator().state();
    save(model, o.save_path, {opt.state(), to_metadata(info)});
    write_metrics_csv(info.history, o.out_dir + "/metrics.csv");
    write_training_chart(info.history, o.out_dir + "/chart.png", chart_subtitle(info));
  }
  if (!main_rank) return 0;
  if (o.profile) {
    set_profiling(false);
    std::printf("\nprofile (training and evaluation):\n%s", profile_report().c_str());
  }
  if (!evaluated) last = evaluate_model(model, *test_set, classes);
  std::string files = "metrics.csv, chart.png";
  if (write_filters_png(model, o.out_dir + "/filters.png")) files += ", filters.png";
  if (write_mistakes_png(*test_set, last.mistakes, info.class_names, o.out_dir + "/mistakes.png"))
    files += ", mistakes.png";
  std::printf("test accuracy %.2f%%\nsaved %s; %s in %s\n", 100 * last.accuracy, o.save_path.c_str(),
              files.c_str(), o.out_dir.c_str());
  std::printf("next: %s eval %s   |   %s predict %s IMAGE...\n", program_name().c_str(), o.save_path.c_str(),
              program_name().c_str(), o.save_path.c_str());
  return 0;
}

}  // namespace tg::cli
