// Model files: a Sequential written one layer per line ("conv2d 6 5 padding=2"), each layer built by the
// factory registered under its name (layers/registry.hpp) for the shape that reaches it. The grammar and
// every built-in line: docs/model-files.md.
#pragma once

#include <cstddef>
#include <string>

#include "layers/registry.hpp"
#include "layers/residual.hpp"
#include "layers/sequential.hpp"

namespace tg {

// Limits on untrusted input: the text, one line, the layer count, one layer's per-example output.
inline constexpr std::size_t kMaxModelFileBytes = 1 << 20;
inline constexpr std::size_t kMaxModelLineChars = 1000;
inline constexpr std::size_t kMaxModelLayers = 10000;
inline constexpr std::size_t kMaxLayerOutputElements = std::size_t{1} << 26;
// Blocks: open blocks at once (residual and repeat), and the copies of one repeat.
inline constexpr std::size_t kMaxModelNesting = 100;
inline constexpr int kMaxRepeat = 1000;

// The same limits, adjustable (the fuzzer lowers them so that no input can allocate much).
struct ModelFileLimits {
  std::size_t max_bytes = kMaxModelFileBytes;
  std::size_t max_line_chars = kMaxModelLineChars;
  std::size_t max_layers = kMaxModelLayers;
  std::size_t max_output_elements = kMaxLayerOutputElements;  // per example, of the input and every layer
  double max_parameters = 1 << 28;                            // of the whole model
};

// Builds the model of the file at `path` for per-example inputs `input_chw` ([C, H, W] or [F]) and
// `classes` classes; its output must be [classes]. Each module remembers its line (Module::source()).
// tg::Error "path:line: what is wrong" for any fault of the file (unreadable, too large, not text, unknown
// layer or key, bad or missing value, a layer that cannot take the shape reaching it, a wrong output).
Sequential model_from_file(const std::string& path, const Shape& input_chw, int classes);
// The same from text; `source_name` names it in errors ("net.tg:9: ...").
Sequential model_from_text(const std::string& text, const Shape& input_chw, int classes,
                           const std::string& source_name = "<text>");
Sequential model_from_text(const std::string& text, const Shape& input_chw, int classes,
                           const std::string& source_name, const ModelFileLimits& limits);
// One to_line() per layer, each ending in '\n'; model_from_text of it builds the same model (same layers,
// state keys and shapes). tg::Error for a layer that has no model-file line (e.g. a nested Sequential).
std::string model_to_text(const Sequential& model);

}  // namespace tg
