// open_checkpoint (run_checkpoint.hpp): a checkpoint file read, its model built from the text it holds and
// its tensors loaded; an .onnx file imported in memory instead (import.cpp). Apart from run_checkpoint.cpp,
// which the checkpoint fuzzer compiles alone, so that the fuzzer does not pull in the import.
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

}  // namespace tg::cli
