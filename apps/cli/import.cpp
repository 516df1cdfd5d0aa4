// `tapegrad import`, and an .onnx file wherever a checkpoint goes (eval, predict, export, train --init):
// the ONNX graph mapped onto layers (layers/onnx/import.cpp), plus what a checkpoint records beside the
// weights (class names, normalization, input size), from the file's metadata, the flags or a data set.
#include <charconv>
#include <cstdio>
#include <filesystem>

#include "commands.hpp"
#include "layers/onnx/onnx.hpp"
#include "run_checkpoint.hpp"

namespace tg::cli {
namespace {

// "0.5" or "0.485,0.456,0.406" -> per-channel values (one value: every channel's).
std::vector<float> channel_values(const std::string& text, const char* flag, std::size_t channels) {
  std::vector<float> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t comma = std::min(text.find(',', start), text.size());
    const std::string part = text.substr(start, comma - start);
    float v = 0;
    const auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), v);
    if (part.empty() || ec != std::errc() || end != part.data() + part.size())
      fail_usage(flag, " ", text,
                 ": expected a number or one per channel, separated by commas (e.g. 0.5 or "
                 "0.485,0.456,0.406)");
    out.push_back(v);
    start = comma + 1;
  }
  if (out.size() == 1) out.assign(channels, out[0]);
  if (out.size() != channels)
    fail_usage(flag, " ", text, ": ", out.size(), " values for a model of ", channels, " input channels");
  return out;
}

}  // namespace

Checkpoint open_onnx(const std::string& path, const ImportOptions& o) {
  const Shape input = o.input.empty() ? Shape{} : parse_input_shape(o.input);
  ImportedOnnx imported = load_onnx(path, input);
  Checkpoint c;
  RunInfo& info = c.info;
  const std::filesystem::path file(path);
  info.model_name = file.stem().string();
  // The model file's name when the text is the one `tapegrad export` recorded, else the import's.
  info.model_source = imported.model_text == imported.info.model_text && !imported.info.model_source.empty()
                          ? imported.info.model_source
                          : file.stem().string() + ".tg";
  info.model_text = imported.model_text;
  info.input = imported.info.input;
  if (info.input.size() != 3)
    fail(path, ": the model takes ", shape_str(info.input),
         " inputs; tapegrad's checkpoints take images CxHxW");
  const std::size_t channels = info.input[0];
  info.class_names = imported.info.class_names;
  info.mean = imported.info.mean;
  info.std = imported.info.std;
  if (!o.data_dir.empty()) {  // the data's class names and normalization, as `train` would take them
    const DataSpec spec = data_spec("auto", o.data_dir);
    info.dataset = spec.dataset;
    info.data_dir = o.data_dir;
    if (info.class_names.empty()) info.class_names = spec.class_names;
    if (info.mean.empty() && (spec.dataset == "mnist" || spec.dataset == "fashion")) {
      info.mean.assign(channels, spec.normalization.mean);
      info.std.assign(channels, spec.normalization.std);
    } else if (info.mean.empty()) {
      std::vector<std::string> folder_classes;
      DataRequest request{.dataset = spec.dataset,
                          .dir = o.data_dir,
                          .options = {.rows = info.input[1], .cols = info.input[2], .channels = channels}};
      request.before_reading = [&](const Shape&, const std::vector<std::string>& names) {
        folder_classes = names;
      };
      const std::unique_ptr<ImageDataset> train = open_dataset(request, Split::Train);
      info.mean = train->channel_mean();
      info.std = train->channel_std();
      if (info.class_names.empty()) info.class_names = folder_classes;
    }
  }
  if (!o.mean.empty()) info.mean = channel_values(o.mean, "--mean", channels);
  if (!o.std.empty()) info.std = channel_values(o.std, "--std", channels);
  for (const float s : info.std)
    if (!(s > 0.f)) fail_usage("--std: a standard deviation must be positive, not ", s);
  if (info.mean.empty()) {
    info.mean.assign(channels, 0.f);
    info.std.assign(channels, 1.f);
    imported.notes.push_back(
        "no normalization known (none in its metadata, no --data, --mean or --std): "
        "images are scaled to [0, 1] and used as they are (mean 0, std 1)");
  }
  if (info.mean.size() != channels || info.std.size() != channels)
    fail(path, ": its normalization has ", info.mean.size(), " means and ", info.std.size(),
         " standard deviations for ", channels, " channels");
  if (o.classes > 0 && static_cast<std::size_t>(o.classes) != imported.classes)
    fail_usage("--classes ", o.classes, ": the model has ", imported.classes, " outputs");
  if (!info.class_names.empty() && info.class_names.size() != imported.classes)
    fail(path, ": the model has ", imported.classes, " outputs but ",
         o.data_dir.empty() ? "its metadata names " : o.data_dir + " has ", info.class_names.size(),
         " classes");
  if (info.class_names.empty())
    for (std::size_t k = 0; k < imported.classes; ++k) info.class_names.push_back(std::to_string(k));
  // What a checkpoint of a run would hold; an import has trained for no epoch here.
  info.optimizer = "sgd";
  info.schedule = "constant";
  info.batch_size = 64;
  info.epochs = 1;
  info.epoch = 0;
  for (const std::string& note : imported.notes) say("%s: %s\n", path.c_str(), note.c_str());
  c.model = std::move(imported.model);
  return c;
}

int import_model(const ImportOptions& o) {
  const Checkpoint c = open_onnx(o.model, o);
  // import_onnx checked that the model text builds these very layers, as eval and predict will build them.
  save(c.model, o.out, {{}, to_metadata(c.info)});
  const Checkpoint back = open_checkpoint(o.out);
  say("%s: %s layers, %s parameters, input %s, %zu classes; wrote %s (see `tapegrad summary %s`)\n",
      o.model.c_str(), with_commas(back.model.size()).c_str(),
      with_commas(back.model.num_parameters()).c_str(), back.info.input_text().c_str(), back.info.classes(),
      o.out.c_str(), o.out.c_str());
  return 0;
}

}  // namespace tg::cli
