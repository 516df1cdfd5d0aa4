// tg::cli::main: the `tapegrad` command line on CLI11 subcommands (../shared/API.md, "The command line").
#include "tapegrad/cli.hpp"

#include <CLI/CLI.hpp>

#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <filesystem>
#include <tuple>

#include "commands.hpp"
#include "models.hpp"

namespace tg::cli {
namespace {

bool g_quiet = false;
std::string g_program = "tapegrad";

const std::vector<std::string> kMnistClasses{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
const std::vector<std::string> kFashionClasses{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                               "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

// --dataset auto: what `dir` holds, CIFAR-10's batches, MNIST-format IDX files (raw or .gz) or folders of
// images by class.
std::string detect_dataset(const std::string& dir) {
  const std::filesystem::path base(dir);
  auto has = [&](const std::string& name) { return std::filesystem::exists(base / name); };
  if (has("data_batch_1.bin") || has("test_batch.bin")) return "cifar10";
  std::string idx_names;
  for (const char* stem : {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                           "t10k-labels-idx1-ubyte"}) {
    if (has(stem) || has(std::string(stem) + ".gz"))
      return dir.find("fashion") != std::string::npos ? "fashion" : "mnist";
    idx_names += (idx_names.empty() ? "" : ", ") + std::string(stem);
  }
  if (image_folder_layout(dir) != FolderLayout::None) return "folder";
  fail("cannot find a data set in ", dir, ": looked for MNIST-format files (", idx_names,
       ", raw or .gz), CIFAR-10's binary batches (data_batch_1.bin ... data_batch_5.bin, test_batch.bin) and "
       "folders of images by class (",
       dir, "/train/<class>/ and ", dir, "/test/<class>/, or ", dir, "/<class>/). ", mnist_help(dir), ". ",
       cifar10_help(dir), ". For your own images, ", image_folder_help(dir));
}

// A folder's split, with a progress line on a terminal while decoding thousands of images, then what was
// found and how fast it decoded.
std::unique_ptr<ImageDataset> open_image_folder(const DataRequest& r, Split split) {
  const bool terminal = ::isatty(::fileno(stdout));
  const auto start = std::chrono::steady_clock::now();
  ImageFolderOptions options = r.options;
  const char* which = split == Split::Train ? "training" : "test";
  bool shown = false;
  if (terminal) {
    options.progress = [&](std::size_t done, std::size_t total) {
      if (total < 2000) return;
      say("\rdecoding the %s images: %zu/%zu", which, done, total);
      std::fflush(stdout);
      shown = true;
    };
  }
  auto data = std::make_unique<ImageFolder>(r.dir, split, std::move(options));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  say("%s%s images (%s): %s; read in %.1f s (%.0f images/s)\n", shown ? "\r" : "", which, r.dir.c_str(),
      data->summary().c_str(), seconds, static_cast<double>(data->size()) / std::max(seconds, 1e-9));
  return data;
}
// The flags given on the command line, e.g. {"--lr", "--epochs"}.
std::set<std::string> given_flags(const CLI::App& app) {
  std::set<std::string> given;
  for (const CLI::Option* option : app.get_options())
    if (option->count() > 0 && !option->get_lnames().empty()) given.insert("--" + option->get_lnames()[0]);
  return given;
}

// --image-size: "HxW" or "N" (square), each side 1 to 4096.
std::pair<std::size_t, std::size_t> parse_image_size(const std::string& text) {
  const std::size_t x = text.find('x');
  auto side = [&](const std::string& part) {
    std::size_t value = 0;
    const auto [ptr, ec] = std::from_chars(part.data(), part.data() + part.size(), value);
    if (ec != std::errc() || ptr != part.data() + part.size() || value < 1 || value > 4096)
      throw UsageError("--image-size " + text +
                       ": expected HxW or N, e.g. 32x32 or 64 (each side 1 to 4096)");
    return value;
  };
  if (x == std::string::npos) return {side(text), side(text)};
  return {side(text.substr(0, x)), side(text.substr(x + 1))};
}

}  // namespace

void set_quiet(bool quiet) { g_quiet = quiet; }

const std::string& program_name() { return g_program; }

void say(const char* format, ...) {
  if (g_quiet) return;
  va_list args;
  va_start(args, format);
  std::vprintf(format, args);
  va_end(args);
}

DataSpec data_spec(const std::string& dataset, const std::string& data_dir) {
  std::string kind = dataset;
  if (kind == "auto") kind = detect_dataset(data_dir);
  if (kind == "cifar10") return {"cifar10", cifar10_class_names(data_dir), {}};
  if (kind == "folder") return {"folder", {}, {}};
  if (kind == "fashion") return {"fashion", kFashionClasses, MNISTOptions::fashion()};
  return {"mnist", kMnistClasses, MNISTOptions::mnist()};
}

std::unique_ptr<ImageDataset> open_dataset(const DataRequest& r, Split split) {
  if (r.dataset == "folder") return open_image_folder(r, split);
  const std::vector<float>&mean = r.options.mean, &std = r.options.std;
  if (r.dataset == "cifar10") {
    if (mean.empty() && std.empty()) return std::make_unique<CIFAR10>(r.dir, split);
    return std::make_unique<CIFAR10>(r.dir, split, mean, std);
  }
  if (mean.size() != 1 || std.size() != 1) {
    fail(r.dataset, " images have one channel, but the normalization has ", mean.size(), " mean(s) and ",
         std.size(), " std(s)");
  }
  return std::make_unique<MNIST>(r.dir, split, MNISTOptions{mean[0], std[0]});
}

int main(int argc, char** argv) {
  if (argc > 0 && argv[0] && *argv[0]) g_program = std::filesystem::path(argv[0]).filename().string();
  distributed::Context mpi(argc, argv);  // MPI_Init under mpirun (when built with MPI); MPI_Finalize at exit
  CLI::App app{"tapegrad: train small CNNs written as model files, then evaluate them and classify images",
               "tapegrad"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "tapegrad 0.1.0");
  auto finite_positive = CLI::Validator(
      [](std::string& s) {
        const float v = std::strtof(s.c_str(), nullptr);
        return std::isfinite(v) && v > 0 ? std::string() : "must be a finite number > 0, got " + s;
      },
      "FLOAT > 0");
  std::string models;
  for (const std::string& name : builtin_model_names()) models += (models.empty() ? "" : ", ") + name;

  // ---- train
  TrainOptions t;
  CLI::App* train_cmd = app.add_subcommand(
      "train", "train a model on MNIST-format, CIFAR-10 or image-folder data; writes a checkpoint");
  train_cmd->add_option("--model", t.model,
                        "a built-in model (" + models + ") or a model file (default lenet)");
  train_cmd->add_option("--data", t.data_dir,
                        "folder with the IDX files, raw or .gz, CIFAR-10's binary batches, or images by "
                        "class (DIR/train/<class>/ "
                        "and DIR/test/<class>/, or DIR/<class>/ with --val-split) (default "
                        ".cache/mnist, /usr/share/datasets/fashion-mnist for --dataset fashion, "
                        ".cache/cifar-10-batches-bin for --dataset cifar10)");
  train_cmd
      ->add_option("--dataset", t.dataset,
                   "mnist, fashion, cifar10, folder (images by class), or auto (from the folder's files; "
                   "fashion if its path says so)")
      ->check(CLI::IsMember({"auto", "mnist", "fashion", "cifar10", "folder"}));
  std::string image_size;
  train_cmd->add_option(
      "--image-size", image_size,
      "image folders: resize every image to HxW, e.g. 32x32 or 64 (default: the images' own "
      "size, when they all have the same)");
  train_cmd
      ->add_option("--channels", t.image_channels,
                   "image folders: 1 (gray) or 3 (RGB) (default: 3 when any file is a colour image, RGB or "
                   "palette, by its header)")
      ->check(CLI::IsMember({1, 3}));
  train_cmd
      ->add_option("--val-split", t.val_split,
                   "image folders without train/ and test/: hold out this fraction of each class for testing "
                   "(chosen by --seed)")
      ->check(CLI::Range(0.001, 0.999));
  train_cmd->add_flag("--skip-bad-images", t.skip_bad_images,
                      "image folders: skip (and count) images that cannot be read instead of stopping");
  train_cmd->add_option("--epochs", t.epochs, "passes over the training set")->check(CLI::Range(1, 1000));
  train_cmd
      ->add_option(
          "--batch-size", t.batch_size,
          "examples per step; under mpirun, per rank (a step then takes ranks x batch-size examples)")
      ->check(CLI::Range(1, 65536));
  train_cmd
      ->add_option("--optimizer", t.optimizer,
                   "sgd (with momentum), adam or adamw (PyTorch's Adam and AdamW); default sgd")
      ->check(CLI::IsMember({"sgd", "adam", "adamw"}));
  train_cmd->add_option("--lr", t.lr, "learning rate at the start (default: sgd 0.05, adam and adamw 1e-3)")
      ->check(finite_positive);
  train_cmd->add_option("--momentum", t.momentum, "SGD momentum (default 0.9; sgd only)")
      ->check(CLI::Range(0.0, 0.999));
  train_cmd
      ->add_option("--weight-decay", t.weight_decay,
                   "sgd and adam: L2 penalty added to the gradients (default sgd 5e-4, adam 0); adamw: "
                   "decoupled weight decay (default 1e-2)")
      ->check(CLI::Range(0.0, 1.0));
  std::vector<float> betas;
  auto below_one = CLI::Validator(
      [](std::string& s) {
        const float v = std::strtof(s.c_str(), nullptr);
        return v >= 0 && v < 1 ? std::string() : "must be a number in [0, 1), got " + s;
      },
      "FLOAT in [0, 1)");
  train_cmd->add_option("--betas", betas, "adam and adamw: B1,B2 (default 0.9,0.999)")
      ->delimiter(',')
      ->expected(2)
      ->check(below_one);
  train_cmd->add_option("--eps", t.eps, "adam and adamw: added to the denominator (default 1e-8)")
      ->check(finite_positive);
  train_cmd
      ->add_option("--schedule", t.schedule,
                   "learning-rate schedule: cosine (to 0 over the run), step (x0.1 per epoch) or constant")
      ->check(CLI::IsMember({"cosine", "step", "constant"}));
  train_cmd->add_option("--warmup", t.warmup_epochs, "epochs of linear warm-up before the cosine schedule")
      ->check(CLI::Range(0.0, 100.0));
  train_cmd->add_option("--seed", t.seed, "seed of initialization, shuffling and augmentation");
  train_cmd->add_option("--augment", t.augment,
                        "per-step augmentation of the training images: none (default; flips are wrong for "
                        "digits) or a comma-separated list of flip (random horizontal flip) and crop=N "
                        "(random crop after zero-padding by N), e.g. flip,crop=4");
  train_cmd
      ->add_option("--threads", t.threads,
                   "threads of tapegrad's pool; OpenBLAS stays single-threaded (default: the cores; under "
                   "mpirun, the cores / the ranks on this machine)")
      ->check(CLI::Range(1, 256));
  train_cmd->add_option(
      "--out", t.out_dir,
      "folder for metrics.csv, chart.png, filters.png, mistakes.png (default runs/MODEL; on --resume, the "
      "checkpoint's folder)");
  train_cmd->add_option("--save", t.save_path,
                        "checkpoint written after every epoch (default OUT/model.safetensors)");
  train_cmd->add_option(
      "--resume", t.resume_path,
      "continue a run from its checkpoint: the model, optimizer, schedule and position come from it");
  train_cmd->add_option("--limit", t.limit, "train on the first N images only (0: all)");
  train_cmd->add_flag(
      "--detect-anomaly", t.detect_anomaly,
      "check every op's output and gradients for NaN/Inf and stop at the first, naming the op");
  train_cmd->add_flag("--profile", t.profile,
                      "print time per op type and per layer, forward and backward, at the end");

  // ---- eval
  EvalOptions e;
  CLI::App* eval_cmd = app.add_subcommand("eval", "accuracy, loss, per-class table and confusion matrix");
  eval_cmd->add_option("checkpoint", e.checkpoint, "a checkpoint written by tapegrad train")->required();
  eval_cmd->add_option("--data", e.data_dir, "folder of the test set (default: the one it trained on)");
  eval_cmd->add_option(
      "--out", e.out_dir,
      "folder for eval_per_class.csv, eval_confusion.csv and eval_confusion.png (default: the checkpoint's)");
  eval_cmd->add_option("--batch-size", e.batch_size, "images per forward pass")->check(CLI::Range(1, 65536));
  eval_cmd->add_option("--threads", e.threads, "threads of tapegrad's pool")->check(CLI::Range(1, 256));

  // ---- predict
  PredictOptions p;
  CLI::App* predict_cmd = app.add_subcommand("predict", "the class and top-3 of each image");
  predict_cmd->add_option("checkpoint", p.checkpoint, "a checkpoint written by tapegrad train")->required();
  predict_cmd->add_option("images", p.images, "images (PNG, JPEG, BMP); any size or channel count")
      ->required();
  predict_cmd
      ->add_option("--invert", p.invert,
                   "auto: invert dark-on-light images to MNIST's light-on-dark (not for a model trained on "
                   "an image folder: its images are taken as they are); never; always")
      ->check(CLI::IsMember({"auto", "never", "always"}));
  predict_cmd->add_option("--top", p.top, "how many classes to list")->check(CLI::Range(1, 1000));

  // ---- summary
  SummaryOptions s;
  CLI::App* summary_cmd =
      app.add_subcommand("summary", "layers, model-file lines, output shapes, parameters");
  summary_cmd->add_option("model", s.model, "a built-in model (" + models + ") or a model file")->required();
  summary_cmd->add_option("--input", s.input, "per-example input CxHxW (default 1x28x28)");
  summary_cmd->add_option("--classes", s.classes, "number of classes (default 10)")
      ->check(CLI::Range(1, 1 << 20));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {  // every rank parses the same arguments; rank 0 tells
    const int code = distributed::is_main() ? app.exit(error) : error.get_exit_code();
    return code == 0 ? 0 : 2;
  }
  const CLI::App* chosen = app.get_subcommands().front();
  const std::string command = g_program + " " + chosen->get_name();
  try {
    if (chosen == train_cmd) {
      t.given = given_flags(*train_cmd);
      if (!image_size.empty()) std::tie(t.image_rows, t.image_cols) = parse_image_size(image_size);
      if (betas.size() == 2) {
        t.beta1 = betas[0];
        t.beta2 = betas[1];
      }
      const bool resuming = !t.resume_path.empty();
      if (t.data_dir.empty() && !resuming) {
        t.data_dir = t.dataset == "fashion"   ? "/usr/share/datasets/fashion-mnist"
                     : t.dataset == "cifar10" ? ".cache/cifar-10-batches-bin"
                                              : ".cache/mnist";
      }
      if (t.out_dir.empty()) {
        if (resuming) {
          const auto parent = std::filesystem::path(t.resume_path).parent_path();
          t.out_dir = parent.empty() ? "." : parent.string();
        } else {
          t.out_dir = "runs/" + find_model(t.model).name;
        }
      }
      if (t.save_path.empty()) t.save_path = t.out_dir + "/model.safetensors";
      return train(t);
    }
    if (chosen == eval_cmd) return evaluate(e);
    if (chosen == predict_cmd) return predict(p);
    return summary(s);
  } catch (const std::exception& error) {
    // 2: a usage error (a bad model file, --model or --input, flags that cannot go together); 1: data, file
    // and numeric errors (tg::Error, file-system errors). One line either way.
    const bool usage = dynamic_cast<const ModelFileError*>(&error) || dynamic_cast<const UsageError*>(&error);
    const int code = usage ? 2 : 1;
    const int world = distributed::world_size();
    if (world == 1) {
      std::fprintf(stderr, "\n%s: error: %s\n", command.c_str(), error.what());
      return code;
    }
    // The other ranks may be waiting for this one in a collective: stop them all.
    std::fprintf(stderr, "\n%s: error on rank %d of %d: %s\n", command.c_str(), distributed::rank(), world,
                 error.what());
    std::fflush(stderr);
    distributed::abort(code);
  }
  return 1;
}

}  // namespace tg::cli
