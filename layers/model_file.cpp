#include "layers/model_file.hpp"

#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>
#include <utility>
#include <vector>

namespace tg {
namespace {

// Every fault of the file itself is a ModelFileError (the command line exits 2 for it, as for a usage error).
template <class... Parts>
[[noreturn]] void file_fail(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  throw ModelFileError(out.str());
}

std::string join(const std::vector<std::string>& words) {
  std::string out;
  for (const std::string& w : words) out += (out.empty() ? "" : ", ") + w;
  return out;
}

std::string hex_byte(unsigned char c) {
  char buffer[8];
  std::snprintf(buffer, sizeof buffer, "0x%02x", c);
  return buffer;
}

// The tokens of one line without its comment; tg::Error for bytes that are not text.
std::vector<std::string> tokenize(const std::string& line, const std::string& location) {
  for (unsigned char c : line) {
    if ((c < 0x20 && c != '\t') || c == 0x7f) {
      file_fail(location, ": byte ", hex_byte(c), " is not text; is this a model file?");
    }
  }
  const std::string code = line.substr(0, line.find('#'));
  std::vector<std::string> tokens;
  std::string token;
  for (unsigned char c : code) {
    if (c >= 0x80)
      file_fail(location, ": byte ", hex_byte(c), " outside a comment; a model file is ASCII text");
    if (c == ' ' || c == '\t') {
      if (!token.empty()) tokens.push_back(std::move(token));
      token.clear();
    } else {
      token += static_cast<char>(c);
    }
  }
  if (!token.empty()) tokens.push_back(std::move(token));
  return tokens;
}

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
              nearest.empty() ? "" : "did you mean '" + nearest + "'? ", "known: ", join(known), ")");
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

  Sequential model;
  Shape shape = input_chw;
  double total_parameters = 0;
  std::size_t line_number = 0, start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    start = end + 1;
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::string location = source_name + ":" + std::to_string(line_number);
    if (line.size() > limits.max_line_chars) {
      file_fail(location, ": the line is ", line.size(), " characters long; the limit is ",
                limits.max_line_chars);
    }
    const std::vector<std::string> tokens = tokenize(line, location);
    if (tokens.empty()) continue;
    if (model.size() >= limits.max_layers) file_fail(location, ": more than ", limits.max_layers, " layers");
    std::unique_ptr<Module> layer =
        build_layer(tokens, shape, classes, location, limits, limits.max_parameters - total_parameters);
    total_parameters += static_cast<double>(layer->num_parameters());
    if (total_parameters > limits.max_parameters) {  // a factory that did not call check_parameter_count
      file_fail(location, ": the model would have more than ", static_cast<long long>(limits.max_parameters),
                " parameters, the limit");
    }
    model.add(std::move(layer));
  }
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

std::string model_to_text(const Sequential& model) {
  std::string text;
  for (std::size_t i = 0; i < model.size(); ++i) {
    const Module& layer = model[i];
    const std::string line = layer.to_line();
    if (line.empty() || line.find_first_of("\n#") != std::string::npos) {
      fail("model_to_text: layer ", i, " ", layer.describe(),
           " has no model-file line (override Module::to_line(), or build it from a model file)");
    }
    text += line + "\n";
  }
  return text;
}

}  // namespace tg
