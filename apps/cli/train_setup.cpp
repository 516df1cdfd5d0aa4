// The set-up of `tapegrad train`: a new run from the flags or the checkpoint's run (--resume), its data, and
// its optimizer, loader and schedule at the run's position (train_steps.hpp).
#include <algorithm>
#include <cstdio>
#include <string>

#include "models.hpp"
#include "resume_flags.hpp"
#include "train_steps.hpp"

namespace tg::cli {
namespace {

// --momentum is sgd's, --betas and --eps adam's and adamw's: a flag of another optimizer is an error.
void check_optimizer_flags(const TrainOptions& o, const std::string& optimizer) {
  const bool sgd = optimizer == "sgd";
  for (const char* flag : {"--momentum", "--betas", "--eps"}) {
    if (o.given(flag) && sgd != (std::string(flag) == "--momentum")) {
      fail_usage(flag, " is for ", sgd ? "adam and adamw" : "sgd", ", and this run's optimizer is ",
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
  if (!o.given("--lr")) info.lr = 1e-3f;
  if (!o.given("--weight-decay")) info.weight_decay = o.optimizer == "adamw" ? 1e-2f : 0.f;
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

// --image-size, --channels, --val-split and --skip-bad-images are for image folders; a folder without train/
// and test/ needs --val-split.
void check_folder_flags(const TrainOptions& o, const std::string& dataset) {
  if (dataset != "folder") {
    for (const char* flag : {"--image-size", "--channels", "--val-split", "--skip-bad-images"}) {
      if (o.given(flag))
        fail_usage(flag, " is for folders of images by class; ", o.data_dir, " holds ", dataset, " data");
    }
    return;
  }
  const FolderLayout layout = image_folder_layout(o.data_dir);
  if (layout == FolderLayout::Flat && o.val_split == 0) {
    fail_usage(o.data_dir, " holds class folders but no train/ and test/ folders: hold out a share of each ",
               "class for testing with --val-split F (e.g. --val-split 0.2), or split the images into ",
               o.data_dir, "/train/<class>/ and ", o.data_dir, "/test/<class>/");
  }
  if (layout == FolderLayout::Split)
    image_folder_test_root(o.data_dir);  // before the training images are read
  if (layout == FolderLayout::Split && o.val_split > 0) {
    fail_usage(o.data_dir, " has train/ and test/ folders, so the test images are given; --val-split is for ",
               "one folder of class folders");
  }
}

// --augment's value; a bad one is a usage error (exit 2).
Augmentation augment_flag(const TrainOptions& o) {
  try {
    return parse_augmentation(o.augment);
  } catch (const Error& e) {
    fail_usage(e.what());
  }
}

}  // namespace

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

Run new_run(const TrainOptions& o, const Ranks& ranks) {
  const Augmentation augment = augment_flag(o);
  const DataSpec spec = data_spec(o.dataset, o.data_dir);
  Run run;
  RunInfo& info = run.info;
  if (o.init_path.empty()) {
    if (o.new_head) fail_usage("--new-head replaces the last layer of an --init checkpoint: give --init too");
    const ModelText text = find_model(o.model);
    info.model_name = text.name;
    info.model_source = text.source;
    info.model_text = text.text;
  } else {
    prepare_init(o, run);
  }
  info.dataset = spec.dataset;
  info.data_dir = o.data_dir;
  info.augment = augment;
  info.class_names = spec.class_names;
  if (run.init) {  // a fine-tuned model keeps the normalization it was trained with
    info.mean = run.init->info.mean;
    info.std = run.init->info.std;
  } else if (spec.dataset == "mnist" || spec.dataset == "fashion") {  // others': from the training set
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
  info.world_size = ranks.world;
  info.epochs = o.epochs;
  return run;
}

Run resumed_run(const TrainOptions& o, const Ranks& ranks) {
  if (!o.init_path.empty())
    fail_usage("--init starts a new run and --resume continues one: give one of them");
  augment_flag(o);  // a bad --augment is a usage error before the checkpoint is read
  Checkpoint ckpt = open_checkpoint(o.resume_path);
  Run run{std::move(ckpt.info), std::move(ckpt.model), std::move(ckpt.state), true, nullptr, "", false};
  RunInfo& info = run.info;
  if (o.given("--data")) info.data_dir = o.data_dir;
  check_optimizer_flags(o, info.optimizer);
  check_resume_flags(o, info);
  if (o.given("--model") && find_model(o.model).text != info.model_text) {
    fail_usage(o.resume_path, " holds a different ", info.model_name, " than --model ", o.model,
               " (the model files differ); resume without --model to continue the checkpoint's");
  }
  if (info.world_size != ranks.world && info.step_in_epoch > 0) {
    fail(o.resume_path, " stopped mid-epoch on ", info.world_size, " process(es) (MPI ranks); this run has ",
         ranks.world, ": resume it with the same number so that the rest of the epoch has the same batches");
  }
  if (o.given("--epochs")) info.epochs = o.epochs;
  if (info.epoch >= info.epochs) {
    fail_usage(o.resume_path, " is already at epoch ", info.epoch, " of ", info.epochs,
               "; nothing is left to train: pass --epochs N with N > ", info.epoch, " to train further");
  }
  if (info.flags.empty()) info.flags = flags_of_run(info);  // a checkpoint from before flags were recorded
  return run;
}

TrainData open_training_data(const TrainOptions& o, Run& run) {
  RunInfo& info = run.info;
  // A resumed folder run converts its images as the first run did (size, channels, classes); a new one finds
  // them from the images unless --image-size / --channels say.
  DataRequest request{.dataset = info.dataset,
                      .dir = info.data_dir,
                      .options = {.rows = o.image_rows,
                                  .cols = o.image_cols,
                                  .channels = o.image_channels,
                                  .val_split = info.val_split,
                                  .seed = info.seed,
                                  .skip_bad_images = info.skip_bad_images,
                                  .limit = info.limit,  // a folder decodes only those (others: keep_first)
                                  .mean = info.mean,
                                  .std = info.std}};
  ImageFolderOptions& options = request.options;
  if (run.init && info.dataset == "folder") {  // images read at the size and channels the model takes
    options.channels = run.init->info.input[0];
    options.rows = run.init->info.input[1];
    options.cols = run.init->info.input[2];
  }
  if (run.resuming && info.dataset == "folder") {
    options.channels = info.input[0];
    options.rows = info.input[1];
    options.cols = info.input[2];
    options.classes = info.class_names;
  }
  bool shape_checked = false;
  request.before_reading = [&](const Shape& input, const std::vector<std::string>& class_names) {
    shape_checked = true;
    if (run.resuming) {
      if (input != info.input) {
        fail(info.data_dir, " has ", input[0], "x", input[1], "x", input[2], " images; ", o.resume_path,
             " was trained on ", info.input_text());
      }
      return;
    }
    if (info.class_names.empty()) info.class_names = class_names;  // a folder's
    if (run.init && input != run.init->info.input)
      fail(info.data_dir, " has ", input[0], "x", input[1], "x", input[2], " images; ", o.init_path,
           " takes ", run.init->info.input_text());
    info.input = input;
    if (run.init && !run.new_head && info.classes() != run.init->info.classes())
      fail_usage(info.data_dir, " has ", info.classes(), " classes but the model of ", o.init_path,
                 " was trained for ", run.init->info.classes(),
                 ": add --new-head to replace its last linear layer for these classes");
    manual_seed(info.seed);
    // The model file's errors name its lines ("net.tg:9: linear 120: input is [16, 5, 5]; add 'flatten'").
    run.model =
        model_from_text(info.model_text, info.input, static_cast<int>(info.classes()), info.model_source);
    if (run.init) load_init(run);
  };
  TrainData data;
  data.train = open_dataset(request, Split::Train);
  if (!shape_checked) {  // a header that did not read, yet the files did: the shape the images came in
    const ImageDataset& train = *data.train;
    const std::vector<std::string> names = info.class_names;
    request.before_reading(Shape{train.channels(), train.rows(), train.cols()}, names);
  }
  // A new CIFAR-10 or folder run's normalization: its training images' (a folder's: the --limit ones).
  if (info.mean.empty()) {
    info.mean = data.train->channel_mean();
    info.std = data.train->channel_std();
  }
  // The test split as the training split came out: its size, channels, classes and normalization.
  request.before_reading = {};
  options.mean = info.mean;
  options.std = info.std;
  options.channels = data.train->channels();
  options.rows = data.train->rows();
  options.cols = data.train->cols();
  options.classes = info.class_names;
  options.limit = 0;
  data.test = open_dataset(request, Split::Test);
  if (info.limit > 0) data.train->keep_first(info.limit);
  return data;
}

Training start_training(const TrainOptions& o, Run& run, const ImageDataset& train_set, const Ranks& ranks) {
  RunInfo& info = run.info;
  std::vector<Tensor> params = run.model.parameters();
  std::unique_ptr<Optimizer> optimizer = make_optimizer(params, info);
  // Sharded: every rank has the same number of steps per epoch (global batches of world x batch-size).
  Training t{std::move(params), std::move(optimizer), nullptr,
             DataLoader(train_set, {.batch_size = info.batch_size,
                                    .shuffle = true,
                                    .seed = info.seed,
                                    .rank = ranks.rank,
                                    .world_size = ranks.world,
                                    .augment = info.augment})};
  Optimizer& opt = *t.optimizer;
  t.steps_per_epoch = t.loader.num_batches();
  if (run.resuming && info.step_in_epoch > 0 && t.steps_per_epoch != info.steps_per_epoch) {
    fail(o.resume_path, " was trained with ", info.steps_per_epoch, " steps per epoch; ", info.data_dir,
         " gives ", t.steps_per_epoch, " (a different training set?)");
  }
  if (run.resuming && info.world_size != ranks.world) {
    say("note: %s was trained on %d process(es), this run has %d: the batches from here on differ from the "
        "original run's\n",
        o.resume_path.c_str(), info.world_size, ranks.world);
  }
  info.world_size = ranks.world;
  info.steps_per_epoch = t.steps_per_epoch;
  const std::size_t total_steps = t.steps_per_epoch * static_cast<std::size_t>(info.epochs);
  if (info.schedule == "cosine") {
    const auto warmup = static_cast<std::size_t>(info.warmup_epochs * static_cast<double>(t.steps_per_epoch));
    t.schedule = std::make_unique<CosineLR>(opt, total_steps, 0.f, std::min(warmup, total_steps - 1));
  }
  if (info.schedule == "step") t.schedule = std::make_unique<StepLR>(opt, t.steps_per_epoch, 0.1f);

  const auto start_epoch = static_cast<std::size_t>(info.epoch);
  if (run.resuming) {
    opt.load_state(run.resumed.optimizer);
    t.first_step = info.step_in_epoch;
    if (!info.generator.empty()) default_generator().set_state(info.generator);
    say("resuming %s: %s (%s) after epoch %zu of %d%s; restored the weights, the %s state (lr %g, %s), "
        "the %s schedule, batch size %zu, seed %llu; %s may change on resume\n",
        o.resume_path.c_str(), info.model_name.c_str(), info.model_source.c_str(), start_epoch, info.epochs,
        t.first_step
            ? (", step " + std::to_string(t.first_step) + " of epoch " + std::to_string(start_epoch + 1))
                  .c_str()
            : "",
        info.optimizer.c_str(), info.lr, optimizer_options_text(info).c_str(), info.schedule.c_str(),
        info.batch_size, static_cast<unsigned long long>(info.seed), resume_may_change_text().c_str());
  }
  distributed::broadcast_parameters(
      run.model);  // rank 0's parameters and buffers everywhere (1 process: no-op)
  t.loader.set_epoch(start_epoch);
  if (t.schedule) t.schedule->set_step(start_epoch * t.steps_per_epoch + t.first_step);
  return t;
}

}  // namespace tg::cli
