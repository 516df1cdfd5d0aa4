// The `train` subcommand's flags (CLI11) and the TrainOptions a parsed command line gives
// (train_command.hpp).
#include "train_command.hpp"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <tuple>

#include "models.hpp"
#include "resume_flags.hpp"

namespace tg::cli {
namespace {

// Every long-named flag of `command` but --help: its value as text (a list joined by ','; a switch "true" or
// "false"), its default (`defaults`, read before parsing), and whether it was given.
std::map<std::string, FlagValue> flag_values(const CLI::App& command,
                                             const std::map<std::string, std::string>& defaults) {
  std::map<std::string, FlagValue> flags;
  for (const CLI::Option* option : command.get_options()) {
    if (option == command.get_help_ptr() || option->get_lnames().empty()) continue;
    const std::string flag = "--" + option->get_lnames()[0];
    FlagValue v;
    v.is_switch = option->get_expected_max() == 0;
    v.given = option->count() > 0;
    const auto d = defaults.find(flag);
    v.default_value = v.is_switch ? "false" : d != defaults.end() ? d->second : "";
    if (v.given && v.is_switch) {
      v.value = option->as<bool>() ? "true" : "false";
    } else if (v.given) {
      for (const std::string& item : option->results()) v.value += (v.value.empty() ? "" : ",") + item;
    } else {
      v.value = v.default_value;
    }
    flags[flag] = v;
  }
  return flags;
}

}  // namespace

std::pair<std::size_t, std::size_t> parse_image_size(const std::string& text) {
  const std::size_t x = text.find('x');
  auto side = [&](const std::string& part) {
    std::size_t value = 0;
    const auto [ptr, ec] = std::from_chars(part.data(), part.data() + part.size(), value);
    if (ec != std::errc() || ptr != part.data() + part.size() || value < 1 || value > 4096)
      fail_usage("--image-size ", text, ": expected HxW or N, e.g. 32x32 or 64 (each side 1 to 4096)");
    return value;
  };
  if (x == std::string::npos) return {side(text), side(text)};
  return {side(text.substr(0, x)), side(text.substr(x + 1))};
}

TrainCommand::TrainCommand(CLI::App& app) {
  auto finite_positive = CLI::Validator(
      [](std::string& s) {
        const float v = std::strtof(s.c_str(), nullptr);
        return std::isfinite(v) && v > 0 ? std::string() : "must be a finite number > 0, got " + s;
      },
      "FLOAT > 0");
  std::string models;
  for (const std::string& name : builtin_model_names()) models += (models.empty() ? "" : ", ") + name;

  app_ = app.add_subcommand(
      "train", "train a model on MNIST-format, CIFAR-10 or image-folder data; writes a checkpoint");
  app_->add_option("--model", t_.model, "a built-in model (" + models + ") or a model file (default lenet)");
  app_->add_option("--data", t_.data_dir,
                   "folder with the IDX files, raw or .gz, CIFAR-10's binary batches, or images by "
                   "class (DIR/train/<class>/ "
                   "and DIR/test/<class>/, or DIR/<class>/ with --val-split) (default "
                   ".cache/mnist, /usr/share/datasets/fashion-mnist for --dataset fashion, "
                   ".cache/cifar-10-batches-bin for --dataset cifar10)");
  app_->add_option("--dataset", t_.dataset,
                   "mnist, fashion, cifar10, folder (images by class), or auto (from the folder's files; "
                   "fashion if its path says so)")
      ->check(CLI::IsMember({"auto", "mnist", "fashion", "cifar10", "folder"}));
  app_->add_option("--image-size", image_size_,
                   "image folders: resize every image to HxW, e.g. 32x32 or 64 (default: the images' own "
                   "size, when they all have the same)");
  app_->add_option("--channels", t_.image_channels,
                   "image folders: 1 (gray) or 3 (RGB) (default: 3 when any file is a colour image, RGB or "
                   "palette, by its header)")
      ->check(CLI::IsMember({1, 3}));
  app_->add_option("--val-split", t_.val_split,
                   "image folders without train/ and test/: hold out this fraction of each class for testing "
                   "(chosen by --seed)")
      ->check(CLI::Range(0.001, 0.999));
  app_->add_flag("--skip-bad-images", t_.skip_bad_images,
                 "image folders: skip (and count) images that cannot be read instead of stopping");
  app_->add_option("--epochs", t_.epochs, "passes over the training set")->check(CLI::Range(1, 1000));
  app_->add_option(
          "--batch-size", t_.batch_size,
          "examples per step; under mpirun, per rank (a step then takes ranks x batch-size examples)")
      ->check(CLI::Range(1, 65536));
  app_->add_option("--optimizer", t_.optimizer,
                   "sgd (with momentum), adam or adamw (PyTorch's Adam and AdamW); default sgd")
      ->check(CLI::IsMember({"sgd", "adam", "adamw"}));
  app_->add_option("--lr", t_.lr, "learning rate at the start (default: sgd 0.05, adam and adamw 1e-3)")
      ->check(finite_positive);
  app_->add_option("--momentum", t_.momentum, "SGD momentum (default 0.9; sgd only)")
      ->check(CLI::Range(0.0, 0.999));
  app_->add_option("--weight-decay", t_.weight_decay,
                   "sgd and adam: L2 penalty added to the gradients (default sgd 5e-4, adam 0); adamw: "
                   "decoupled weight decay (default 1e-2)")
      ->check(CLI::Range(0.0, 1.0));
  auto below_one = CLI::Validator(
      [](std::string& s) {
        const float v = std::strtof(s.c_str(), nullptr);
        return v >= 0 && v < 1 ? std::string() : "must be a number in [0, 1), got " + s;
      },
      "FLOAT in [0, 1)");
  app_->add_option("--betas", betas_, "adam and adamw: B1,B2 (default 0.9,0.999)")
      ->delimiter(',')
      ->expected(2)
      ->check(below_one);
  app_->add_option("--eps", t_.eps, "adam and adamw: added to the denominator (default 1e-8)")
      ->check(finite_positive);
  app_->add_option("--schedule", t_.schedule,
                   "learning-rate schedule: cosine (to 0 over the run), step (x0.1 per epoch) or constant")
      ->check(CLI::IsMember({"cosine", "step", "constant"}));
  app_->add_option("--warmup", t_.warmup_epochs, "epochs of linear warm-up before the cosine schedule")
      ->check(CLI::Range(0.0, 100.0));
  app_->add_option("--seed", t_.seed, "seed of initialization, shuffling and augmentation");
  app_->add_option("--augment", t_.augment,
                   "per-step augmentation of the training images: none (default; flips are wrong for "
                   "digits) or a comma-separated list of flip (random horizontal flip) and crop=N "
                   "(random crop after zero-padding by N), e.g. flip,crop=4");
  app_->add_option("--threads", t_.threads,
                   "threads of tapegrad's pool; OpenBLAS stays single-threaded (default: the cores; under "
                   "mpirun, the cores / the ranks on this machine)")
      ->check(CLI::Range(1, 256));
  app_->add_option(
      "--out", t_.out_dir,
      "folder for metrics.csv, chart.png, filters.png, mistakes.png (default runs/MODEL; on --resume, the "
      "checkpoint's folder)");
  app_->add_option("--save", t_.save_path,
                   "checkpoint written after every epoch (default OUT/model.safetensors)");
  app_->add_option(
      "--resume", t_.resume_path,
      "continue a run from its checkpoint: the model, data, optimizer, schedule, position and every "
      "other flag's value come from it; only " +
          resume_may_change_text() + " may change (another flag must keep the checkpoint's value)");
  app_->add_option(
      "--init", t_.init_path,
      "fine-tune: start from this checkpoint's (or .onnx file's) model, weights and normalization, "
      "with a fresh optimizer and schedule (instead of --model)");
  app_->add_flag("--new-head", t_.new_head,
                 "with --init: replace the model's last linear layer by a new one for the data's classes");
  app_->add_option("--limit", t_.limit, "train on the first N images only (0: all)");
  app_->add_flag("--detect-anomaly", t_.detect_anomaly,
                 "check every op's output and gradients for NaN/Inf and stop at the first, naming the op");
  app_->add_option("--precision", t_.precision,
                   "fp32 (default) or bf16: mixed precision, convolutions and linear layers multiplying "
                   "bfloat16 with float32 sums (AVX512_BF16 CPUs); weights, optimizer and checkpoint stay "
                   "float32");
  app_->add_flag("--profile", t_.profile,
                 "print time per op type and per layer, forward and backward, at the end");
  // The defaults, read from the bound values before the command line writes into them (CLI11 shows a
  // captured default in the help, so each option gets its own back: the help stays as written).
  app_->preparse_callback([this](std::size_t) {
    for (CLI::Option* option : app_->get_options()) {
      if (option->get_lnames().empty()) continue;
      const std::string shown = option->get_default_str();
      defaults_["--" + option->get_lnames()[0]] = option->capture_default_str()->get_default_str();
      option->default_str(shown);
    }
  });
}

TrainOptions TrainCommand::options() const {
  TrainOptions t = t_;
  t.flags = flag_values(*app_, defaults_);
  if (!image_size_.empty()) std::tie(t.image_rows, t.image_cols) = parse_image_size(image_size_);
  if (betas_.size() == 2) {
    t.beta1 = betas_[0];
    t.beta2 = betas_[1];
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
      t.out_dir =
          "runs/" + (t.init_path.empty() ? find_model(t.model).name
                                         : std::filesystem::path(t.init_path).stem().string() + "-tuned");
    }
  }
  if (t.save_path.empty()) t.save_path = t.out_dir + "/model.safetensors";
  return t;
}

}  // namespace tg::cli
