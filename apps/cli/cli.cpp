// tg::cli::main: the `tapegrad` command line on CLI11 subcommands (docs/cli.md has every command and flag).
#include "tapegrad/cli.hpp"

#include <CLI/CLI.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <filesystem>

#include "commands.hpp"
#include "models.hpp"
#include "train_command.hpp"

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
  if (r.before_reading) {
    options.before_decoding = [&](std::size_t channels, std::size_t rows, std::size_t cols,
                                  const std::vector<std::string>& class_names) {
      r.before_reading(Shape{channels, rows, cols}, class_names);
    };
  }
  auto data = std::make_unique<ImageFolder>(r.dir, split, std::move(options));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  say("%s%s images (%s): %s; read in %.1f s (%.0f images/s)\n", shown ? "\r" : "", which, r.dir.c_str(),
      data->summary().c_str(), seconds, static_cast<double>(data->size()) / std::max(seconds, 1e-9));
  return data;
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
  // The shape from the format (CIFAR-10) or the images file's IDX header; a header that does not read is
  // left for the reading to report.
  if (r.before_reading) {
    const std::vector<std::string> names = data_spec(r.dataset, r.dir).class_names;
    if (r.dataset == "cifar10") {
      r.before_reading(Shape{3, kCifarSide, kCifarSide}, names);
    } else if (const auto shape = mnist_image_shape(r.dir, split)) {
      r.before_reading(Shape{(*shape)[0], (*shape)[1], (*shape)[2]}, names);
    }
  }
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
  std::string models;
  for (const std::string& name : builtin_model_names()) models += (models.empty() ? "" : ", ") + name;

  TrainCommand train_command(app);

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
  eval_cmd->add_flag(
      "--int8", e.int8,
      "run the convs and linear layers in int8, quantized at load (the checkpoint is not changed)");
  eval_cmd->add_option("--calibrate", e.calibrate_dir,
                       "with --int8: training data to calibrate on (default: the data it trained on)");

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
  predict_cmd->add_flag(
      "--int8", p.int8,
      "run the convs and linear layers in int8, quantized at load (the checkpoint is not changed)");
  predict_cmd->add_option("--calibrate", p.calibrate_dir,
                          "with --int8: training data to calibrate on (default: the data it trained on)");

  // ---- summary
  SummaryOptions s;
  CLI::App* summary_cmd =
      app.add_subcommand("summary", "layers, model-file lines, output shapes, parameters");
  summary_cmd
      ->add_option(
          "model", s.model,
          "a built-in model (" + models + "), a model file, a checkpoint (.safetensors) or an .onnx file")
      ->required();
  summary_cmd->add_option("--input", s.input, "per-example input CxHxW (default 1x28x28)");
  summary_cmd->add_option("--classes", s.classes, "number of classes (default 10)")
      ->check(CLI::Range(1, 1 << 20));

  // ---- export
  ExportOptions x;
  CLI::App* export_cmd =
      app.add_subcommand("export", "an ONNX model of a checkpoint, for onnxruntime and others");
  export_cmd->add_option("checkpoint", x.checkpoint, "a checkpoint written by tapegrad train or import")
      ->required();
  export_cmd->add_option("out", x.out, "the ONNX file to write (OUT.onnx)")->required();
  export_cmd->add_option("--opset", x.opset, "ONNX opset: 13 or 17")->check(CLI::IsMember({13, 17}));
  export_cmd->add_flag("--fold-bn", x.fold_bn,
                       "fold each batch norm into the convolution before it (as torch.onnx.export does)");

  // ---- import
  ImportOptions i;
  CLI::App* import_cmd = app.add_subcommand(
      "import", "a checkpoint of an ONNX model (from tapegrad export or torch.onnx.export)");
  import_cmd->add_option("model", i.model, "the ONNX file (MODEL.onnx)")->required();
  import_cmd->add_option("out", i.out, "the checkpoint to write (OUT.safetensors)")->required();
  import_cmd->add_option(
      "--data", i.data_dir,
      "a data set whose class names and normalization (as train computes it) the model uses");
  import_cmd->add_option("--input", i.input, "per-example input CxHxW, when the graph does not fix it");
  import_cmd->add_option("--classes", i.classes, "number of classes, when --data does not give them")
      ->check(CLI::Range(1, 1 << 20));
  import_cmd->add_option("--mean", i.mean, "per-channel mean of transforms.Normalize: M or M,M,M");
  import_cmd->add_option("--std", i.std, "per-channel std of transforms.Normalize: S or S,S,S");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {  // every rank parses the same arguments; rank 0 tells
    const int code = distributed::is_main() ? app.exit(error) : error.get_exit_code();
    return code == 0 ? 0 : 2;
  }
  const CLI::App* chosen = app.get_subcommands().front();
  const std::string command = g_program + " " + chosen->get_name();
  try {
    if (chosen == train_command.app()) return train(train_command.options());
    if (chosen == eval_cmd) return evaluate(e);
    if (chosen == predict_cmd) return predict(p);
    if (chosen == export_cmd) return export_model(x);
    if (chosen == import_cmd) return import_model(i);
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
