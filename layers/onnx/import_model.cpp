// ONNX import, the entry points (layers/onnx/onnx.hpp): the file parsed, its input sizes and opset read, the
// graph walked onto layers (import.cpp), the metadata that `tapegrad export` writes read back, and the model
// text chosen (the user's own when it builds the same layers).
#include <nlohmann/json.hpp>

#include <fstream>

#include "core/base/error.hpp"
#include "layers/model_file.hpp"
#include "layers/onnx/import_graph.hpp"
#include "layers/onnx/import_walk.hpp"
#include "layers/onnx/onnx.hpp"
#include "layers/onnx/onnx_proto.hpp"

namespace tg {
namespace {

std::vector<float> floats_of(const nlohmann::json& j, const std::string& what) {
  if (!j.is_array() || j.empty()) fail(what, " should be a non-empty array of numbers");
  std::vector<float> out;
  for (const nlohmann::json& v : j) {
    if (!v.is_number()) fail(what, " should be a non-empty array of numbers");
    out.push_back(v.get<float>());
  }
  return out;
}

// metadata_props written by `tapegrad export`: classes, mean, std, model text, source. Wrong values are an
// error naming the key; unknown keys are ignored.
void read_metadata(const onnx::ModelProto& m, const std::string& file, OnnxModelInfo& info) {
  for (const onnx::StringStringEntryProto& p : m.metadata_props()) {
    const std::string what = file + ": metadata '" + p.key() + "'";
    try {
      if (p.key() == onnx_detail::kMetaClasses) {
        info.class_names = nlohmann::json::parse(p.value()).get<std::vector<std::string>>();
      } else if (p.key() == onnx_detail::kMetaMean) {
        info.mean = floats_of(nlohmann::json::parse(p.value()), what);
      } else if (p.key() == onnx_detail::kMetaStd) {
        info.std = floats_of(nlohmann::json::parse(p.value()), what);
      } else if (p.key() == onnx_detail::kMetaModel) {
        info.model_text = p.value();
      } else if (p.key() == onnx_detail::kMetaSource) {
        info.model_source = p.value();
      }
    } catch (const nlohmann::json::exception& e) {
      fail(what, " does not parse: ", e.what());
    }
  }
}

// `text` for a comment line of the model file: control characters and line breaks become '?' (a producer
// name is the file's to choose), and at most 200 bytes are kept.
std::string printable(const std::string& text) {
  std::string out = text.substr(0, 200);
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  return out;
}

std::string basename_of(const std::string& name) {
  const std::size_t slash = name.find_last_of('/');
  return slash == std::string::npos ? name : name.substr(slash + 1);
}

}  // namespace

ImportedOnnx import_onnx(const std::string& bytes, const std::string& name, const Shape& input) {
  const onnx::ModelProto model = onnx_detail::parse_model(bytes, name);
  std::int64_t opset = 0;
  for (const onnx::OperatorSetIdProto& o : model.opset_import())
    if (o.domain().empty() || o.domain() == "ai.onnx") opset = o.version();
  if (opset < 7)
    fail(name, ": opset ", opset, " (of the default domain): tapegrad imports opsets 7 and later");
  const onnx_detail::Graph g(model.graph(), name);

  // The per-example input: the graph's [N, C, H, W] (or [N, F]) without N, or `input` for symbolic sizes.
  const std::vector<std::int64_t>& dims = g.input_dims();
  if (dims.size() != 4 && dims.size() != 2)
    fail(name, ": the input '", g.input(), "' has ", dims.size(),
         " dimensions; tapegrad imports models of image batches [N, C, H, W] (or [N, F])");
  ImportedOnnx out;
  Shape shape;
  for (std::size_t k = 1; k < dims.size(); ++k) {
    if (dims[k] < 0 && input.empty())
      fail(name, ": the input '", g.input(),
           "' has symbolic sizes (dynamic height or width); give them with "
           "--input CxHxW");
    if (!input.empty() && (input.size() != dims.size() - 1 ||
                           (dims[k] > 0 && input[k - 1] != static_cast<std::size_t>(dims[k]))))
      fail(name, ": --input ", shape_str(input), " disagrees with the graph's input of ", dims.size() - 1,
           " per-example dimensions");
    shape.push_back(dims[k] > 0 ? static_cast<std::size_t>(dims[k]) : input[k - 1]);
  }
  out.info.input = shape;
  read_metadata(model, name, out.info);

  const Shape final_shape = onnx_detail::walk_graph(g, name, opset, shape, out.model, out.notes);
  if (final_shape.size() != 1)
    fail(name, ": the output '", g.output(), "' is ", shape_str(final_shape),
         " per example; tapegrad expects [classes]");
  out.classes = final_shape[0];
  out.model.eval();

  // The model text: the user's own (from `tapegrad export`) when it builds the very same layers.
  const std::string mapped = model_to_text(out.model);
  std::string producer = model.producer_name().empty() ? "an unnamed producer" : model.producer_name();
  if (!model.producer_version().empty()) producer += " " + model.producer_version();
  out.model_text = "# imported from " + printable(basename_of(name)) + " (" + printable(producer) +
                   ", opset " + std::to_string(opset) + ")\n" + mapped;
  if (!out.info.model_text.empty()) {
    try {
      ModelFileLimits limits;  // the same model has the same parameters: nothing larger is built
      limits.max_parameters = static_cast<double>(out.model.num_parameters()) + 1;
      const std::string source = out.info.model_source.empty() ? "<metadata>" : out.info.model_source;
      Sequential theirs =
          model_from_text(out.info.model_text, shape, static_cast<int>(out.classes), source, limits);
      if (model_to_text(theirs) == mapped) {
        // The user's model, its layers knowing their model-file lines (for errors, the tape and a re-export).
        const auto from = out.model.named_state();
        const auto to = theirs.named_state();
        for (std::size_t k = 0; k < to.size(); ++k) {
          Tensor target = to[k].second;
          target.value() = from[k].second.value();
        }
        theirs.eval();
        out.model = std::move(theirs);
        out.model_text = out.info.model_text;
      }
    } catch (const Error&) {
    }
    if (out.model_text != out.info.model_text)
      out.notes.push_back(
          "the model text in its metadata does not describe its graph: the graph's layers are used");
  }
  // What a checkpoint of it will hold must build the same layers again (a Conv with no output channel maps
  // onto a layer object but not onto a valid model-file line).
  // (The metadata's text, when used, was built above already.)
  if (out.model_text != out.info.model_text) {
    try {
      ModelFileLimits limits;
      limits.max_parameters = static_cast<double>(out.model.num_parameters()) + 1;
      model_from_text(out.model_text, shape, static_cast<int>(out.classes), basename_of(name), limits);
    } catch (const Error& e) {
      fail(name, ": its layers do not make a valid model file: ", e.what());
    }
  }
  if (!out.info.class_names.empty() && out.info.class_names.size() != out.classes)
    fail(name, ": its metadata names ", out.info.class_names.size(), " classes but the model has ",
         out.classes, " outputs");
  return out;
}

ImportedOnnx load_onnx(const std::string& path, const Shape& input) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, ": cannot open the file");
  f.seekg(0, std::ios::end);
  const std::streamoff size = f.tellg();
  if (size < 0) fail(path, ": cannot read the file");
  if (static_cast<std::size_t>(size) > onnx_detail::kMaxModelBytes)
    fail(path, ": ", size, " bytes, more than the ", onnx_detail::kMaxModelBytes,
         " an ONNX model may have here");
  f.seekg(0);
  std::string bytes(static_cast<std::size_t>(size), '\0');
  if (!f.read(bytes.data(), size)) fail(path, ": cannot read the file");
  return import_onnx(bytes, path, input);
}

}  // namespace tg
