// tapegrad summary: a model file's layers with their model-file lines, output shapes and parameter counts,
// for a given input; computed from the shapes alone (no data, no layer runs).
#include <cstdio>

#include "commands.hpp"
#include "models.hpp"
#include "run_checkpoint.hpp"

namespace tg::cli {

int summary(const SummaryOptions& o) {
  // A checkpoint (or an .onnx file): its own model text, input and classes.
  if (o.model.ends_with(".safetensors") || o.model.ends_with(".onnx")) {
    const Checkpoint c = open_checkpoint(o.model);
    Shape batch{1};
    batch.insert(batch.end(), c.info.input.begin(), c.info.input.end());
    std::printf("%s: %s (%s) for input %s, %zu classes\n%s\nits model file:\n%s", o.model.c_str(),
                c.info.model_name.c_str(), c.info.model_source.c_str(), c.info.input_text().c_str(),
                c.info.classes(), c.model.summary(batch).c_str(), c.info.model_text.c_str());
    return 0;
  }
  const ModelText text = find_model(o.model);
  Shape input;
  try {
    input = parse_input_shape(o.input);
  } catch (const Error& e) {
    throw ModelFileError(e.what());  // a usage error
  }
  Sequential model = model_from_text(text.text, input, o.classes, text.source);
  Shape batch{1};
  batch.insert(batch.end(), input.begin(), input.end());
  std::printf("%s (%s) for input %s, %d classes\n%s", text.name.c_str(), text.source.c_str(), o.input.c_str(),
              o.classes, model.summary(batch).c_str());
  return 0;
}

}  // namespace tg::cli
