// The layer registry: model-file names ("conv2d", "relu", a user's "prelu") mapped to factories that build a
// module from one parsed line (layers/model_file.hpp). Built-in layers register themselves through
// register_layer exactly as a user's layer does, each from its own .cpp.
#pragma once

#include <array>
#include <cstddef>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "core/base/error.hpp"
#include "layers/module.hpp"

namespace tg {

// A tg::Error whose message already names the file, line and layer (the parser passes it on unchanged).
class ModelFileError : public Error {
 public:
  using Error::Error;
};

// One model-file line, as its factory sees it: positional arguments, key=value options, the per-example
// shape reaching the layer and the number of classes. Every getter marks what it read; after the factory
// returns, a key or positional argument it never read is an error naming the keys it did read. Errors from
// the getters (and fail()) are tg::Error prefixed with the file, line and layer: "net.tg:3: conv2d 6 0: ...".
class LayerArgs {
 public:
  LayerArgs(std::string name, std::vector<std::string> positional,
            std::vector<std::pair<std::string, std::string>> options, Shape input, int classes,
            std::string location = "<args>");

  const std::string& name() const { return name_; }
  // The per-example input shape, without the batch axis: [C, H, W] or [F].
  const Shape& input() const { return input_; }
  int classes() const { return classes_; }
  // "conv2d 16 5 padding=2": the line as written (tokens separated by one space, no comment).
  std::string line() const;
  // "net.tg:3"
  const std::string& location() const { return location_; }

  // A required positional count, >= 1 ('classes' is accepted for the number of classes); `what` names it in
  // errors and in the usage ("OUT").
  int positional_int(std::size_t index, const std::string& what);
  // A required positional size: 5 or 3x5 (height x width), each >= 1.
  std::array<int, 2> positional_size2(std::size_t index, const std::string& what);
  // A required positional channel count: as positional_int, and also 'in' (the channels of the input
  // reaching the line: input()[0]) or 'K*in' (K times them), e.g. OUT of conv2d and linear.
  int positional_channels(std::size_t index, const std::string& what);
  std::size_t num_positional() const { return positional_.size(); }

  // Options; `fallback` when the key is absent.
  float number(const std::string& key, float fallback);            // finite
  int integer(const std::string& key, int fallback, int min = 0);  // whole, >= min; 'classes' accepted
  int channels(const std::string& key, int fallback);              // as integer (>= 1), and 'in', 'K*in'
  bool boolean(const std::string& key, bool fallback);             // true|false
  std::array<int, 2> size2(const std::string& key, std::array<int, 2> fallback, int min = 1);  // 5 or 3x5
  std::string text(const std::string& key, const std::string& fallback);  // the raw value
  bool has(const std::string& key);                                       // present? (marks the key as known)

  // tg::Error "net.tg:3: conv2d 16 5: <parts>".
  template <class... Parts>
  [[noreturn]] void fail(const Parts&... parts) const {
    std::ostringstream out;
    (out << ... << parts);
    fail_message(out.str());
  }
  // Factories call it before allocating: tg::Error if the layer would have more than max_parameters()
  // parameters (what is left of the model's budget; kMaxLayerParameters by default).
  void check_parameter_count(double count) const;
  double max_parameters() const { return max_parameters_; }
  void set_max_parameters(double max) { max_parameters_ = max; }
  static constexpr double kMaxLayerParameters = 1 << 28;
  // Whole numbers (counts, sizes, strides, paddings) are at most this, so shape arithmetic cannot overflow.
  static constexpr int kMaxInteger = 1 << 24;

  // Called by the parser after the factory: tg::Error for a key or positional argument never read.
  void check_all_read() const;

 private:
  std::string name_;
  std::vector<std::string> positional_;
  std::vector<std::pair<std::string, std::string>> options_;
  Shape input_;
  int classes_;
  std::string location_;
  double max_parameters_ = kMaxLayerParameters;
  std::vector<std::string> positional_names_;  // "OUT", "KERNEL": what the factory asked for, by index
  std::vector<std::string> keys_read_;         // every key the factory asked for, present or not
  std::vector<bool> option_read_;

  [[noreturn]] void fail_message(const std::string& message) const;
  const std::string* find(const std::string& key);
  const std::string& positional(std::size_t index, const std::string& what);
  int parse_int(const std::string& value, const std::string& what, int min, bool classes_ok) const;
  int parse_channels(const std::string& value, const std::string& what) const;
  // tg::Error when `value` uses 'in' where the line takes no channel count.
  void refuse_in(const std::string& value, const std::string& what) const;
};

using LayerFactory = std::function<std::unique_ptr<Module>(LayerArgs&)>;

// Words of the model-file grammar that are not layers: the blocks ("residual", "shortcut", "repeat", "end"),
// the channel token "in", and the keywords reserved for later ("save", "add", "concat", "from", "branch").
bool is_model_file_keyword(const std::string& name);
bool is_reserved_keyword(const std::string& name);  // save, add, concat, from, branch

// Makes `name` usable as a model-file line. A name is lowercase letters, digits and '_' starting with a
// letter, and not a keyword of the grammar (is_model_file_keyword); tg::Error for another, for a null
// factory, or for a name already registered (built-ins included).
void register_layer(std::string name, LayerFactory factory);
// Sorted names of every registered layer, built-ins included.
std::vector<std::string> registered_layers();
// The factory of `name`, or nullptr.
const LayerFactory* find_layer(const std::string& name);

// Model-file spellings, for to_line(): 0.01 (shortest exact float), 5 or 3x5.
std::string format_number(float value);
std::string format_size2(const std::array<int, 2>& size);

// Levenshtein distance; the nearest of `candidates` to `word` ("" if none is close), for "did you mean".
std::size_t edit_distance(const std::string& a, const std::string& b);
std::string nearest_name(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace tg
