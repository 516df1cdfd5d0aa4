#include "layers/registry.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <mutex>

#include "core/base/text.hpp"

namespace tg {

// Each built-in layer's registration lives in its own .cpp (next to the module) and calls register_layer
// as a user would; the registry calls them once, before its first use. (Static registrar objects would be
// dropped by the linker from a static library whenever nothing else references their object file.)
void register_activation_layers();  // layers/activations.cpp
void register_batchnorm_layer();    // layers/batchnorm.cpp
void register_conv2d_layer();       // layers/conv2d.cpp
void register_linear_layer();       // layers/linear.cpp
void register_pooling_layers();     // layers/pooling.cpp

namespace {

std::recursive_mutex& registry_mutex() {
  static std::recursive_mutex mutex;
  return mutex;
}

std::map<std::string, LayerFactory>& factories() {
  static std::map<std::string, LayerFactory> map;
  return map;
}

// Under registry_mutex(). Recursive: the built-ins' registrations come back through register_layer.
void ensure_builtins() {
  static bool loaded = false;
  if (loaded) return;
  loaded = true;
  register_activation_layers();
  register_batchnorm_layer();
  register_conv2d_layer();
  register_linear_layer();
  register_pooling_layers();
}

bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > 64 || !(name[0] >= 'a' && name[0] <= 'z')) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; });
}

}  // namespace

bool is_reserved_keyword(const std::string& name) {
  return name == "save" || name == "add" || name == "concat" || name == "from" || name == "branch";
}

bool is_model_file_keyword(const std::string& name) {
  return name == "residual" || name == "shortcut" || name == "repeat" || name == "end" || name == "in" ||
         is_reserved_keyword(name);
}

// ---- the registry ---------------------------------------------------------------------------------------

void register_layer(std::string name, LayerFactory factory) {
  std::lock_guard lock(registry_mutex());
  ensure_builtins();
  if (!valid_name(name)) {
    fail("register_layer: '", name,
         "' is not a layer name (lowercase letters, digits and '_', starting with a letter, at most 64)");
  }
  if (is_model_file_keyword(name)) {
    fail("register_layer: '", name, "' is a keyword of model files (residual, shortcut, repeat, end, in; ",
         "reserved: save, add, concat, from, branch), not a layer name");
  }
  if (!factory) fail("register_layer: '", name, "': the factory is empty");
  if (factories().count(name)) fail("register_layer: a layer named '", name, "' is already registered");
  factories().emplace(std::move(name), std::move(factory));
}

std::vector<std::string> registered_layers() {
  std::lock_guard lock(registry_mutex());
  ensure_builtins();
  std::vector<std::string> names;
  for (const auto& [name, factory] : factories()) names.push_back(name);
  return names;
}

const LayerFactory* find_layer(const std::string& name) {
  std::lock_guard lock(registry_mutex());
  ensure_builtins();
  auto it = factories().find(name);
  return it == factories().end() ? nullptr : &it->second;  // map nodes never move
}

std::string format_number(float value) {
  char buffer[64];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  return ec == std::errc() ? std::string(buffer, end) : std::to_string(value);
}

std::string format_size2(const std::array<int, 2>& size) {
  return size[0] == size[1] ? std::to_string(size[0])
                            : std::to_string(size[0]) + "x" + std::to_string(size[1]);
}

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

std::string nearest_name(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  std::size_t best_distance = std::max<std::size_t>(2, word.size() / 2) + 1;  // farther is no suggestion
  for (const std::string& c : candidates) {
    const std::size_t d = edit_distance(word, c);
    if (d < best_distance) best = c, best_distance = d;
  }
  return best;
}

// ---- LayerArgs --------------------------------------------------------------------------------------------

LayerArgs::LayerArgs(std::string name, std::vector<std::string> positional,
                     std::vector<std::pair<std::string, std::string>> options, Shape input, int classes,
                     std::string location)
    : name_(std::move(name)),
      positional_(std::move(positional)),
      options_(std::move(options)),
      input_(std::move(input)),
      classes_(classes),
      location_(std::move(location)),
      option_read_(options_.size(), false) {}

std::string LayerArgs::line() const {
  std::string out = name_;
  for (const std::string& p : positional_) out += " " + p;
  for (const auto& [key, value] : options_) out += " " + key + "=" + value;
  return out;
}

void LayerArgs::fail_message(const std::string& message) const {
  throw ModelFileError(location_ + ": " + line() + ": " + message);
}

void LayerArgs::check_parameter_count(double count) const {
  if (count > max_parameters_) {
    fail("the layer would have more than ", static_cast<long long>(max_parameters_),
         " parameters, the limit");
  }
}

const std::string* LayerArgs::find(const std::string& key) {
  if (std::find(keys_read_.begin(), keys_read_.end(), key) == keys_read_.end()) keys_read_.push_back(key);
  for (std::size_t i = 0; i < options_.size(); ++i) {
    if (options_[i].first == key) {
      option_read_[i] = true;
      return &options_[i].second;
    }
  }
  return nullptr;
}

const std::string& LayerArgs::positional(std::size_t index, const std::string& what) {
  if (positional_names_.size() <= index) positional_names_.resize(index + 1);
  positional_names_[index] = what;
  if (index >= positional_.size()) {
    std::string usage;
    for (const std::string& n : positional_names_) usage += " " + (n.empty() ? "ARG" : n);
    fail("missing ", what, " (usage: ", name_, usage, ")");
  }
  return positional_[index];
}

int LayerArgs::parse_int(const std::string& value, const std::string& what, int min, bool classes_ok) const {
  if (classes_ok && value == "classes") return classes_;
  refuse_in(value, what);
  int out = 0;
  const char* end = value.data() + value.size();
  auto [ptr, ec] = std::from_chars(value.data(), end, out);
  if (ec == std::errc::result_out_of_range) fail(what, " '", value, "' is out of range");
  if (ec != std::errc() || ptr != end || value.empty()) {
    fail(what, " must be a whole number", classes_ok ? " or 'classes'" : "", ", got '", value, "'");
  }
  if (out < min) fail(what, " must be >= ", min, ", got ", out);
  if (out > kMaxInteger) fail(what, " '", value, "' is out of range (at most ", kMaxInteger, ")");
  return out;
}

void LayerArgs::refuse_in(const std::string& value, const std::string& what) const {
  const bool is_in = value == "in" || (value.size() > 3 && value.compare(value.size() - 3, 3, "*in") == 0) ||
                     value.rfind("in*", 0) == 0;
  if (is_in) {
    fail("'", value, "' for ", what, ": 'in' stands for a channel count, and ", what,
         " is not one ('in' is allowed in OUT of conv2d and linear, groups= and K*in)");
  }
}

int LayerArgs::parse_channels(const std::string& value, const std::string& what) const {
  if (input_.empty()) return parse_int(value, what, 1, true);
  const auto in = static_cast<long long>(input_[0]);
  if (value == "in") {
    if (in > kMaxInteger) fail(what, " 'in' is ", in, ", out of range (at most ", kMaxInteger, ")");
    return static_cast<int>(in);
  }
  const std::size_t star = value.find('*');
  if (star == std::string::npos) return parse_int(value, what, 1, true);
  const std::string factor = value.substr(0, star), rest = value.substr(star + 1);
  if (rest != "in") {
    fail(what, " '", value, "': a product is K*in, one whole number K times 'in' (e.g. 6*in)");
  }
  const int k = parse_int(factor, what + " factor K of K*in", 1, false);
  if (static_cast<long long>(k) * in > kMaxInteger) {
    fail(what, " '", value, "' is ", static_cast<long long>(k) * in, ", out of range (at most ", kMaxInteger,
         ")");
  }
  return static_cast<int>(k * in);
}

int LayerArgs::positional_channels(std::size_t index, const std::string& what) {
  return parse_channels(positional(index, what), what);
}

int LayerArgs::channels(const std::string& key, int fallback) {
  const std::string* value = find(key);
  return value ? parse_channels(*value, key) : fallback;
}

int LayerArgs::positional_int(std::size_t index, const std::string& what) {
  return parse_int(positional(index, what), what, 1, true);
}

std::array<int, 2> LayerArgs::positional_size2(std::size_t index, const std::string& what) {
  const std::string& value = positional(index, what);
  const std::size_t x = value.find('x');
  if (x == std::string::npos) {
    const int v = parse_int(value, what, 1, false);
    return {v, v};
  }
  return {parse_int(value.substr(0, x), what, 1, false), parse_int(value.substr(x + 1), what, 1, false)};
}

float LayerArgs::number(const std::string& key, float fallback) {
  const std::string* value = find(key);
  if (!value) return fallback;
  refuse_in(*value, key);
  float out = 0.f;
  const char* end = value->data() + value->size();
  auto [ptr, ec] = std::from_chars(value->data(), end, out);
  if (ec != std::errc() || ptr != end || !std::isfinite(out)) {
    fail(key, " must be a finite number, got '", *value, "'");
  }
  return out;
}

int LayerArgs::integer(const std::string& key, int fallback, int min) {
  const std::string* value = find(key);
  return value ? parse_int(*value, key, min, true) : fallback;
}

bool LayerArgs::boolean(const std::string& key, bool fallback) {
  const std::string* value = find(key);
  if (!value) return fallback;
  if (*value == "true") return true;
  if (*value == "false") return false;
  fail(key, " must be true or false, got '", *value, "'");
}

std::array<int, 2> LayerArgs::size2(const std::string& key, std::array<int, 2> fallback, int min) {
  const std::string* value = find(key);
  if (!value) return fallback;
  const std::size_t x = value->find('x');
  if (x == std::string::npos) {
    const int v = parse_int(*value, key, min, false);
    return {v, v};
  }
  return {parse_int(value->substr(0, x), key, min, false), parse_int(value->substr(x + 1), key, min, false)};
}

std::string LayerArgs::text(const std::string& key, const std::string& fallback) {
  const std::string* value = find(key);
  return value ? *value : fallback;
}

bool LayerArgs::has(const std::string& key) { return find(key) != nullptr; }

void LayerArgs::check_all_read() const {
  for (std::size_t i = 0; i < options_.size(); ++i) {
    if (option_read_[i]) continue;
    const std::string& key = options_[i].first;
    std::string hint;
    if (keys_read_.empty()) {
      hint = name_ + " takes no options";
    } else {
      const std::string nearest = nearest_name(key, keys_read_);
      hint =
          (nearest.empty() ? "" : "did you mean '" + nearest + "'? ") + "allowed: " + join_words(keys_read_);
    }
    throw ModelFileError(location_ + ": " + name_ + ": unknown key '" + key + "' (" + hint + ")");
  }
  if (positional_.size() > positional_names_.size()) {
    std::string usage;
    for (const std::string& n : positional_names_) usage += " " + (n.empty() ? "ARG" : n);
    throw ModelFileError(location_ + ": " + name_ + ": unexpected argument '" +
                         positional_[positional_names_.size()] + "' (usage: " + name_ + usage + ")");
  }
}

}  // namespace tg
