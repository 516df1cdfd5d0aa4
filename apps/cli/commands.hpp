// The subcommands of `tapegrad` (cli.cpp parses the command line into these options and calls them). Each
// returns the exit code or throws: tg::ModelFileError (a bad model file: exit 2) or another exception
// (data, file or numeric errors: exit 1).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tapegrad.hpp"

namespace tg::cli {

// A command line that cannot work (e.g. --resume with another --lr): exit 2, like CLI11's own errors.
class UsageError : public Error {
 public:
  using Error::Error;
};

// tg::fail()'s message, thrown as a UsageError: fail_usage("--lr ", lr, " differs from ...").
template <class... Parts>
[[noreturn]] void fail_usage(const Parts&... parts) {
  try {
    fail(parts...);
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
}

// One flag of `train` as a command line gave it: its value as text (a list joined by ','; a switch "true" or
// "false"), the text of its default, and whether it was given.
struct FlagValue {
  std::string value, default_value;
  bool given = false, is_switch = false;
};

struct TrainOptions {
  std::string model = "lenet", data_dir, dataset = "auto", schedule = "cosine", out_dir, save_path,
              resume_path;
  // --init CHECKPOINT (or .onnx): start from its model and weights, with a fresh optimizer; --new-head
  // replaces its last linear layer for the data's classes.
  std::string init_path;
  bool new_head = false;
  int epochs = 3, threads = 0;  // threads 0: the machine's cores, split between this machine's ranks
  std::size_t batch_size = 64, limit = 0;
  double warmup_epochs = 0.3;
  // sgd, adam or adamw. lr and weight_decay are sgd's defaults; adam's and adamw's (PyTorch's) replace them
  // when --lr / --weight-decay are not given (train.cpp).
  std::string optimizer = "sgd";
  float lr = 0.05f, momentum = 0.9f, weight_decay = 5e-4f;
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;  // adam and adamw
  std::uint64_t seed = 1;
  std::string augment = "none";  // parse_augmentation's grammar (data/augment.hpp)
  bool profile = false, detect_anomaly = false;
  // fp32 or bf16 (mixed precision: tg::set_precision, core/runtime/precision.hpp); parsed by train().
  std::string precision = "fp32";
  // Image folders: --image-size HxW (0: the images' own), --channels 1|3 (0: 3 when any image has colour),
  // --val-split F (a folder without train/ and test/), --skip-bad-images.
  std::size_t image_rows = 0, image_cols = 0, image_channels = 0;
  double val_split = 0;
  bool skip_bad_images = false;
  // Every flag of the train command ("--lr" -> its value), given or not: what a checkpoint records, and what
  // --resume checks against that record (resume_flags.hpp).
  std::map<std::string, FlagValue> flags;
  bool given(const std::string& flag) const {
    const auto it = flags.find(flag);
    return it != flags.end() && it->second.given;
  }
};
int train(TrainOptions options);

// --image-size: "HxW" or "N" (square), each side 1 to 4096; UsageError otherwise.
std::pair<std::size_t, std::size_t> parse_image_size(const std::string& text);

struct EvalOptions {
  std::string checkpoint, data_dir, out_dir;
  std::size_t batch_size = 1000;
  int threads = 0;
  bool int8 = false;          // --int8: post-training quantization (docs/int8.md)
  std::string calibrate_dir;  // --calibrate DIR: its training images (default: the data it trained on)
};
int evaluate(const EvalOptions& options);

struct PredictOptions {
  std::string checkpoint, invert = "auto";
  std::vector<std::string> images;
  int top = 3;
  bool int8 = false;
  std::string calibrate_dir;
};
int predict(const PredictOptions& options);

// `tapegrad export CHECKPOINT OUT.onnx [--opset 13|17] [--fold-bn]` (export.cpp).
struct ExportOptions {
  std::string checkpoint, out;
  int opset = 13;
  bool fold_bn = false;
};
int export_model(const ExportOptions& options);

// `tapegrad import MODEL.onnx OUT.safetensors [--data DIR | --input CxHxW --classes N] [--mean M --std S]`
// (import.cpp).
struct ImportOptions {
  std::string model, out, data_dir, input;
  int classes = 0;
  std::string mean, std;  // "0.5" or "0.485,0.456,0.406"
};
int import_model(const ImportOptions& options);

struct SummaryOptions {
  std::string model, input = "1x28x28";
  int classes = 10;
};
int summary(const SummaryOptions& options);

// The data sets the CLI reads: MNIST-format IDX files (MNIST, Fashion-MNIST), CIFAR-10's binary batches and
// folders of images by class.
struct DataSpec {
  std::string dataset;                   // "mnist" | "fashion" | "cifar10" | "folder"
  std::vector<std::string> class_names;  // empty for a folder: its training split's folders
  MNISTOptions normalization;            // IDX only: CIFAR-10's and a folder's come from the training set
};
// "auto": the kind of what data_dir holds: "cifar10" for data_batch_1.bin or test_batch.bin, else for IDX
// files "fashion" when the folder's path says so, else "mnist", else "folder" for class folders
// (DIR/train/<class> or DIR/<class>); tg::Error naming what was looked for if none.
DataSpec data_spec(const std::string& dataset, const std::string& data_dir);

// How to open a split of a data set: its kind (a DataSpec's), its folder, and the options. The normalization
// (options.mean and options.std, one per channel; empty for CIFAR-10 and folders: the split's own statistics)
// is every kind's; the rest is image folders' (ImageFolderOptions).
struct DataRequest {
  std::string dataset, dir;
  ImageFolderOptions options{};
  // Called with the examples' shape [C, H, W] and the class names once they are known from the files'
  // headers, before the images are read or decoded (train builds the model there, so that a model-file
  // error comes before minutes of decoding). May throw; nothing is read then.
  std::function<void(const Shape& input, const std::vector<std::string>& class_names)> before_reading{};
};
// Opens a split; for a folder, prints what it found (and a progress line while decoding a large one).
std::unique_ptr<ImageDataset> open_dataset(const DataRequest& request, Split split);

// Prints on rank 0 only (the other ranks of an MPI job stay quiet).
[[gnu::format(printf, 1, 2)]] void say(const char* format, ...);
void set_quiet(bool quiet);

// The program's name as invoked ("tapegrad", or e.g. "custom_layer" for a program that registers its own
// layers and calls tg::cli::main), for the commands it suggests.
const std::string& program_name();

}  // namespace tg::cli
