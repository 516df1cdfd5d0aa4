// open_checkpoint (run_checkpoint.hpp): a checkpoint file read, its model built from the text it holds and
// its tensors loaded; an .onnx file imported in memory instead (import.cpp); and open_checkpoint_data, the
// data set such a checkpoint reads. Apart from run_checkpoint.cpp, which the checkpoint fuzzer compiles
// alone, so that the fuzzer does not pull in the import or the data sets (cli.cpp).
#include <filesystem>

#include "commands.hpp"
#include "run_checkpoint.hpp"

namespace tg::cli {

Checkpoint open_checkpoint(const std::string& path) {
  if (path.ends_with(".onnx")) return open_onnx(path, {});
  const SafetensorsFile file = read_safetensors(path);
  Checkpoint c;
  c.info = from_metadata(file.metadata, path);
  try {
    c.model = model_from_text(c.info.model_text, c.info.input, static_cast<int>(c.info.classes()),
                              c.info.model_source);
  } catch (const Error& e) {
    const bool unknown_layer = std::string(e.what()).find("unknown layer") != std::string::npos;
    fail(path, ": the model text it holds no longer builds: ", e.what(),
         unknown_layer ? "; a model with a custom layer opens only in a program that registers that layer "
                         "(e.g. the one that trained it)"
                       : "");
  }
  try {
    c.state = load(c.model, path);
  } catch (const Error& e) {
    fail(path, ": its tensors do not match the model text it holds (", c.info.model_source, "): ", e.what());
  }
  return c;
}

std::unique_ptr<ImageDataset> open_checkpoint_data(const RunInfo& info, const std::string& path,
                                                   const std::string& dir, bool detect, Split split,
                                                   const std::vector<std::string>& classes) {
  std::string kind = info.dataset;
  if (detect) {
    const std::string found = data_spec("auto", dir).dataset;
    if (kind.empty() || found == "folder" || found == "cifar10" || kind == "folder" || kind == "cifar10")
      kind = found;
  }
  std::error_code ec;
  const bool same_folder = dir == info.data_dir || std::filesystem::equivalent(dir, info.data_dir, ec);
  std::unique_ptr<ImageDataset> data =
      open_dataset({.dataset = kind,
                    .dir = dir,
                    .options = {.rows = info.input[1],
                                .cols = info.input[2],
                                .channels = info.input[0],
                                .val_split = same_folder ? info.val_split : 0.0,
                                .seed = info.seed,
                                .skip_bad_images = info.skip_bad_images,
                                .classes = classes,
                                .mean = info.mean,
                                .std = info.std}},
                   split);
  if (Shape{data->channels(), data->rows(), data->cols()} != info.input) {
    fail(dir, " has ", data->channels(), "x", data->rows(), "x", data->cols(), " images; ", path, " takes ",
         info.input_text());
  }
  return data;
}

}  // namespace tg::cli
