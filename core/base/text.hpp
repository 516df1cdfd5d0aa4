// Text helpers every room may use for its messages and reports (the base room: the standard library only).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace tg {

// 61706 -> "61,706" (parameter and image counts in summaries, reports and data-set descriptions).
inline std::string with_commas(std::size_t n) {
  const std::string digits = std::to_string(n);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// {"a", "b", "c"} -> "a, b, c" (the lists of known names and keys in error messages).
inline std::string join_words(const std::vector<std::string>& words) {
  std::string out;
  for (const std::string& w : words) out += (out.empty() ? "" : ", ") + w;
  return out;
}

}  // namespace tg
