// Model files: the tree of layers and blocks (parsed by model_file_blocks.cpp) built into a Sequential for
// the shape reaching each line, and back to text (model_to_text).
#include "layers/model_file.hpp"

#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "core/base/text.hpp"
#include "layers/model_file_blocks.hpp"

namespace tg {
namespace {

using model_file_detail::file_fail;
using model_file_detail::FileNode;
using model_file_detail::parse_blocks;

// Builds the module of one line for `shape`, checks what it read and computes its output shape into `shape`.
std::unique_ptr<Module> build_layer(const std::vector<std::string>& tokens, Shape& shape, int classes,
                                    const std::string& location, const ModelFileLimits& limits,
                                    double parameter_budget) {
  const std::string& name = tokens[0];
  const LayerFactory* factory = find_layer(name);
  if (!factory) {
    const std::vector<std::string> known = registered_layers();
    const std::string nearest = nearest_name(name, known);
    file_fail(location, ": unknown layer '", name, "' (",
              nearest.empty() ? "" : "did you mean '" + nearest + "'? ", "known: ", join_words(known), ")");
  }
  std::vector<std::string> positional;
  std::vector<std::pair<std::string, std::string>> options;
  for (std::size_t i = 1; i < tokens.size(); ++i) {
    const std::string& t = tokens[i];
    const std::size_t eq = t.find('=');
    if (eq == std::string::npos) {
      if (!options.empty()) {
        file_fail(location, ": ", name, ": positional argument '", t, "' after the key=value options");
      }
      positional.push_back(t);
      continue;
    }
    std::string key = t.substr(0, eq), value = t.substr(eq + 1);
    if (key.empty()) file_fail(location, ": ", name, ": '", t, "' has no key before '='");
    if (value.empty()) file_fail(location, ": ", name, ": missing value for key '", key, "'");
    for (const auto& [k, v] : options) {
      if (k == key) file_fail(location, ": ", name, ": key '", key, "' given twice");
    }
    options.emplace_back(std::move(key), std::move(value));
  }
  LayerArgs args(name, std::move(positional), std::move(options), shape, classes, location);
  args.set_max_parameters(parameter_budget);
  std::unique_ptr<Module> layer;
  try {
    layer = (*factory)(args);
  } catch (const ModelFileError&) {
    throw;
  } catch (const Error& e) {
    throw ModelFileError(location + ": " + args.line() + ": " + e.what());
  }
  if (!layer) file_fail(location, ": ", args.line(), ": the factory of '", name, "' returned no module");
  args.check_all_read();
  Shape next;
  try {
    next = layer->output_shape(shape);
  } catch (const Error& e) {
    throw ModelFileError(location + ": " + args.line() + ": " + e.what());
  }
  double elements = 1;
  for (std::size_t d : next) elements *= static_cast<double>(d);
  if (next.empty() || elements < 1 || elements > static_cast<double>(limits.max_output_elements)) {
    file_fail(location, ": ", args.line(), ": the output ", shape_str(next), " for input ", shape_str(shape),
              " is empty or has more than ", limits.max_output_elements, " elements");
  }
  shape = std::move(next);
  layer->set_source(location, args.line());
  return layer;
}

// ---- building the modules of the tree -------------------------------------------------------------------

struct BuildState {
  const std::string& source_name;
  int classes;
  const ModelFileLimits& limits;
  double total_parameters = 0;
  std::string copy = {};  // " (copy 2 of 3)" inside a repeat, "" outside
};

// A shortcut that would make `want` from `input`, for the error message: "conv2d 32 1 stride=2".
std::string suggested_shortcut(const Shape& input, const Shape& want) {
  if (input.size() == 3 && want.size() == 3) {
    for (std::size_t stride = 1; stride <= input[1] && stride <= 64; ++stride) {
      if ((input[1] - 1) / stride + 1 == want[1] && (input[2] - 1) / stride + 1 == want[2]) {
        return "conv2d " + std::to_string(want[0]) + " 1" +
               (stride > 1 ? " stride=" + std::to_string(stride) : "");
      }
    }
    return "";
  }
  if (want.size() == 1 && input.size() == 1) return "linear " + std::to_string(want[0]);
  return "";
}

void build_nodes(const std::vector<FileNode>& nodes, Sequential& into, Shape& shape, BuildState& state);

std::unique_ptr<Module> build_residual(const FileNode& block, Shape& shape, BuildState& state) {
  const auto location = [&](std::size_t line) { return state.source_name + ":" + std::to_string(line); };
  Sequential body, shortcut;
  Shape body_shape = shape, shortcut_shape = shape;
  build_nodes(block.body, body, body_shape, state);
  if (block.has_shortcut) build_nodes(block.shortcut, shortcut, shortcut_shape, state);
  if (body_shape != shortcut_shape) {
    std::string fix;
    if (!block.has_shortcut) {
      const std::string line = suggested_shortcut(shape, body_shape);
      const bool same_size = shape.size() == 3 && body_shape.size() == 3 && shape[1] == body_shape[1] &&
                             shape[2] == body_shape[2];
      if (!line.empty()) {
        fix = "; add a 'shortcut' section, e.g. '" + line + "'";
      } else if (shape.size() == 3 && body_shape.size() == 3 && !same_size) {
        fix =
            "; the body changes the height and width: pad its convolutions (e.g. padding=1 for a 3x3 kernel) "
            "or add a 'shortcut' section that does the same";
      } else {
        fix = "; add a 'shortcut' section";
      }
    } else {
      fix = "; the shortcut must end with the body's shape";
    }
    file_fail(location(block.end_line), state.copy, ": end: the body gives ", shape_str(body_shape),
              " but the shortcut gives ", shape_str(shortcut_shape), " (block opened at ",
              location(block.line), ")", fix);
  }
  std::unique_ptr<Residual> residual = block.has_shortcut
                                           ? std::make_unique<Residual>(std::move(body), std::move(shortcut))
                                           : std::make_unique<Residual>(std::move(body));
  residual->set_source(location(block.line) + state.copy, "residual");
  shape = std::move(body_shape);
  return residual;
}

void build_nodes(const std::vector<FileNode>& nodes, Sequential& into, Shape& shape, BuildState& state) {
  for (const FileNode& node : nodes) {
    switch (node.kind) {
      case FileNode::Kind::kLayer: {
        const std::string location = state.source_name + ":" + std::to_string(node.line) + state.copy;
        std::unique_ptr<Module> layer = build_layer(node.tokens, shape, state.classes, location, state.limits,
                                                    state.limits.max_parameters - state.total_parameters);
        state.total_parameters += static_cast<double>(layer->num_parameters());
        if (state.total_parameters >
            state.limits.max_parameters) {  // a factory without check_parameter_count
          file_fail(location, ": the model would have more than ",
                    static_cast<long long>(state.limits.max_parameters), " parameters, the limit");
        }
        into.add(std::move(layer));
        break;
      }
      case FileNode::Kind::kResidual:
        into.add(build_residual(node, shape, state));
        break;
      case FileNode::Kind::kRepeat: {
        const std::string outer = state.copy;
        for (int i = 0; i < node.count; ++i) {
          state.copy = outer + " (copy " + std::to_string(i + 1) + " of " + std::to_string(node.count) + ")";
          build_nodes(node.body, into, shape, state);
        }
        state.copy = outer;
        break;
      }
    }
  }
}

}  // namespace

Sequential model_from_text(const std::string& text, const Shape& input_chw, int classes,
                           const std::string& source_name) {
  return model_from_text(text, input_chw, classes, source_name, ModelFileLimits{});
}

Sequential model_from_text(const std::string& text, const Shape& input_chw, int classes,
                           const std::string& source_name, const ModelFileLimits& limits) {
  if (text.size() > limits.max_bytes) {
    file_fail(source_name, ": the model file is ", text.size(), " bytes; the limit is ", limits.max_bytes);
  }
  double elements = 1;
  for (std::size_t d : input_chw) elements *= static_cast<double>(d);
  if (input_chw.empty() || elements < 1 || elements > static_cast<double>(limits.max_output_elements)) {
    file_fail(source_name, ": the input shape ", shape_str(input_chw),
              " must have at least one axis, each >= 1");
  }
  if (classes < 1) file_fail(source_name, ": the number of classes must be >= 1, got ", classes);

  const std::vector<FileNode> tree = parse_blocks(text, source_name, limits);
  Sequential model;
  Shape shape = input_chw;
  BuildState state{source_name, classes, limits};
  build_nodes(tree, model, shape, state);
  if (model.size() == 0) file_fail(source_name, ": the model has no layers");
  if (shape.size() != 1 || shape[0] != static_cast<std::size_t>(classes)) {
    file_fail(source_name, ": the model's output is ", shape_str(shape), " but the data has ", classes,
              " classes; end with 'linear classes'");
  }
  return model;
}

Sequential model_from_file(const std::string& path, const Shape& input_chw, int classes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) file_fail(path, ": cannot open the model file");
  std::string text;
  text.resize(kMaxModelFileBytes + 1);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) file_fail(path, ": cannot read the model file");
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > kMaxModelFileBytes) {
    file_fail(path, ": the model file is larger than ", kMaxModelFileBytes, " bytes, the limit");
  }
  return model_from_text(text, input_chw, classes, path);
}

namespace {

// The lines of `model`'s layers at `indent`, a Residual as its block.
void write_lines(const Sequential& model, const std::string& indent, const std::string& path,
                 std::string& text) {
  for (std::size_t i = 0; i < model.size(); ++i) {
    const Module& layer = model[i];
    const std::string name = path.empty() ? std::to_string(i) : path + "." + std::to_string(i);
    if (const auto* residual = dynamic_cast<const Residual*>(&layer)) {
      text += indent + "residual\n";
      write_lines(residual->body(), indent + "  ", name + ".body", text);
      if (residual->has_shortcut()) {
        text += indent + "shortcut\n";
        write_lines(residual->shortcut(), indent + "  ", name + ".shortcut", text);
      }
      text += indent + "end\n";
      continue;
    }
    const std::string line = layer.to_line();
    if (line.empty() || line.find_first_of("\n#") != std::string::npos) {
      fail("model_to_text: layer ", name, " ", layer.describe(),
           " has no model-file line (override Module::to_line(), or build it from a model file)");
    }
    text += indent + line + "\n";
  }
}

}  // namespace

std::string model_to_text(const Sequential& model) {
  std::string text;
  write_lines(model, "", "", text);
  return text;
}

}  // namespace tg
