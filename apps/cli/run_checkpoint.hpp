// Self-describing training checkpoints: beside the tensors (tg::save), a checkpoint written by `tapegrad
// train` holds the model file's text, the input shape, the class names, the normalization, the optimizer
// and its options, the schedule's position and the epoch (and, after Ctrl-C, the step within the epoch and
// the random generator's state), so that eval, predict and --resume need nothing else.
//
// In the safetensors metadata: "format" (kFormat), "model" (its name), "model_text" (the file as written,
// comments included) and "run" (the rest, as JSON; its "flags", the run's flag values, may be absent). The
// tensors stay the state_dict of the same torch.nn.Sequential ("0.weight", ...), plus "optimizer.*" for the
// optimizer's state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tapegrad.hpp"

namespace tg::cli {

inline constexpr const char* kFormat = "tapegrad-train-2";

struct EpochRecord {
  double train_loss = 0, train_accuracy = 0, test_loss = 0, test_accuracy = 0, seconds = 0,
         images_per_second = 0;
  float lr_end = 0;
};

struct RunInfo {
  // The model and its data.
  std::string model_name, model_source, model_text;  // "lenet", "lenet.tg", the file's text
  Shape input;                                       // per example: [C, H, W]
  std::vector<std::string> class_names;              // index = label
  std::vector<float> mean, std;                      // per channel: x = (pixel / 255 - mean) / std
  std::string dataset, data_dir;                     // "mnist" | "fashion" | "cifar10" | "folder"; its folder
  // Image folders: the fraction of each class held out for testing (a folder without train/ and test/; the
  // seed chooses), and whether unreadable images were skipped.
  double val_split = 0;
  bool skip_bad_images = false;
  Augmentation augment;  // of the training batches ("augment": its text())
  // The optimizer and the learning-rate schedule.
  std::string optimizer = "sgd";                    // sgd | adam | adamw
  float lr = 0, momentum = 0, weight_decay = 0;     // momentum: sgd's
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;  // adam's and adamw's
  std::string schedule;                             // cosine | step | constant
  double warmup_epochs = 0;
  // The run and where it is.
  std::size_t batch_size = 0, limit = 0, steps_per_epoch = 0;
  std::uint64_t seed = 0;
  int world_size = 1, epochs = 0;
  int epoch = 0;                  // epochs completed
  std::size_t step_in_epoch = 0;  // steps of epoch + 1 done (interrupted mid-epoch), else 0
  // The interrupted epoch's sums so far (over every rank), so that its metrics come out as uninterrupted.
  double partial_loss_sum = 0, partial_seconds = 0;
  std::size_t partial_seen = 0, partial_correct = 0;
  std::string generator;  // tg::default_generator().state() at the save
  std::vector<EpochRecord> history;
  // Every flag of the run's command line that a resumed run must keep, at the value the run used ("--lr" ->
  // "0.05"; resume_flags.hpp). Empty in checkpoints written before flags were recorded.
  std::map<std::string, std::string> flags;

  std::size_t classes() const { return class_names.size(); }
  std::string input_text() const;  // "1x28x28"
};

std::map<std::string, std::string> to_metadata(const RunInfo& info);
// tg::Error naming `path` for a checkpoint without the metadata (e.g. from an older tapegrad, or written by
// tg::save directly) or with metadata that does not parse.
RunInfo from_metadata(const std::map<std::string, std::string>& metadata, const std::string& path);

struct Checkpoint {
  RunInfo info;
  Sequential model;     // built from info.model_text, tensors loaded
  TrainingState state;  // the optimizer's state and the raw metadata
};
// Reads `path`, builds its model from its text and loads its tensors: tg::Error when the file is not a
// training checkpoint, or when its model text and its tensors disagree (naming the first tensor that does).
// A path ending in .onnx is imported in memory (open_onnx).
Checkpoint open_checkpoint(const std::string& path);

struct ImportOptions;
// An ONNX model imported as a checkpoint (import.cpp): its class names, normalization and input from its
// metadata, or from `options` (--data, --mean, --std, --input, --classes; api of `tapegrad import`).
Checkpoint open_onnx(const std::string& path, const ImportOptions& options);

// A split of `dir` as the checkpoint at `path` takes its images (eval's test set, --int8's calibration set):
// read at the model's size and channels with its normalization; labelled by `classes` (empty: a folder's own
// class folders); its held-out split the training run's when `dir` is the folder it trained on. The kind of
// data is the checkpoint's, or with `detect` what `dir` holds when either is a folder or CIFAR-10 (IDX files
// keep the checkpoint's kind: MNIST and Fashion-MNIST differ only in names and normalization, which come from
// the checkpoint). tg::Error when its images are not the model's shape.
std::unique_ptr<ImageDataset> open_checkpoint_data(const RunInfo& info, const std::string& path,
                                                   const std::string& dir, bool detect, Split split,
                                                   const std::vector<std::string>& classes);

// "1x28x28" -> [1, 28, 28]; tg::Error otherwise.
Shape parse_input_shape(const std::string& text);

}  // namespace tg::cli
