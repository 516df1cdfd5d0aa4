// tg::Error: the one exception type tapegrad throws for bad input (shapes, files, arguments), and the helpers
// that build its messages. The base room: every other room may include it; it includes the standard library
// only.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace tg {

// Thrown for every user error. The message names the op, layer or file, what was expected and what was
// received, e.g. "matmul: inner dimensions differ: [64, 400] x [256, 120]".
class Error : public std::invalid_argument {
 public:
  explicit Error(const std::string& what) : std::invalid_argument(what) {}
};

// "[64, 400]" for a shape; "[]" for a 0-d array.
template <class ShapeLike>
std::string shape_str(const ShapeLike& shape) {
  std::ostringstream out;
  out << '[';
  bool first = true;
  for (auto d : shape) {
    out << (first ? "" : ", ") << d;
    first = false;
  }
  out << ']';
  return out.str();
}

// Builds a message from any streamable pieces: fail("matmul: ", "inner dimensions differ").
template <class... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  throw Error(out.str());
}

}  // namespace tg
