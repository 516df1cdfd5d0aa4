// Parsing a model file's lines into the tree of layers and blocks (layers/model_file_blocks.hpp), with every
// fault of the block structure reported at its file:line.
#include "layers/model_file_blocks.hpp"

#include <charconv>
#include <cstdio>
#include <utility>

#include "core/base/text.hpp"

namespace tg::model_file_detail {
namespace {

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

const char* block_name(const FileNode& n) {
  return n.kind == FileNode::Kind::kResidual ? "residual" : "repeat";
}

// "2,000,000" for a count of layers; a count past 10^18 (a repeat of 10^18 copies) in scientific notation.
std::string layer_count_str(double layers) {
  if (layers < 1e18) return with_commas(static_cast<std::size_t>(layers));
  std::ostringstream out;
  out << layers;
  return out.str();
}

double count_layers(const std::vector<FileNode>& nodes) {
  double n = 0;
  for (const FileNode& node : nodes) n += node.layers;
  return n;
}

}  // namespace

// The lines of `text` as a tree of blocks; tg::Error (file:line) for a fault of the block structure. A loop
// with an explicit stack of open blocks: nesting deeper than kMaxModelNesting is an error, never a deep
// recursion.
std::vector<FileNode> parse_blocks(const std::string& text, const std::string& source_name,
                                   const ModelFileLimits& limits) {
  std::vector<FileNode> top;
  std::vector<FileNode> open;  // the blocks opened and not yet closed, innermost last
  const auto location = [&](std::size_t line) { return source_name + ":" + std::to_string(line); };
  const auto current = [&]() -> std::vector<FileNode>& {
    if (open.empty()) return top;
    FileNode& block = open.back();
    return block.has_shortcut ? block.shortcut : block.body;
  };
  double top_layers = 0;  // the modules of the closed lines of the top level
  const auto push = [&](FileNode node) {
    if (open.empty()) {
      top_layers += node.layers;
      if (top_layers > static_cast<double>(limits.max_layers)) {
        file_fail(location(node.line), ": more than ", limits.max_layers, " layers");
      }
    }
    current().push_back(std::move(node));
  };
  std::size_t line_number = 0, start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    start = end + 1;
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::string where = location(line_number);
    if (line.size() > limits.max_line_chars) {
      file_fail(where, ": the line is ", line.size(), " characters long; the limit is ",
                limits.max_line_chars);
    }
    std::vector<std::string> tokens = tokenize(line, where);
    if (tokens.empty()) continue;
    const std::string& word = tokens[0];
    if (word == "residual" || word == "repeat") {
      if (open.size() >= kMaxModelNesting) {
        file_fail(where, ": ", word, ": blocks nest more than ", kMaxModelNesting, " deep, the limit");
      }
      FileNode block;
      block.kind = word == "residual" ? FileNode::Kind::kResidual : FileNode::Kind::kRepeat;
      block.line = line_number;
      if (word == "residual" && tokens.size() > 1) {
        file_fail(where, ": residual takes no arguments, got '", tokens[1],
                  "' (the body follows on its own lines)");
      }
      if (word == "repeat") {
        if (tokens.size() != 2)
          file_fail(where, ": repeat takes one count: 'repeat N' (1 <= N <= ", kMaxRepeat, ")");
        const std::string& n = tokens[1];
        const char* last = n.data() + n.size();
        auto [ptr, ec] = std::from_chars(n.data(), last, block.count);
        if (ec == std::errc::result_out_of_range)
          file_fail(where, ": repeat ", n, ": at most ", kMaxRepeat, " copies");
        if (ec != std::errc() || ptr != last || block.count < 1) {
          file_fail(where, ": repeat ", n, ": the count must be a whole number from 1 to ", kMaxRepeat);
        }
      }
      block.tokens = std::move(tokens);
      open.push_back(std::move(block));
      continue;
    }
    if (word == "shortcut") {
      if (tokens.size() > 1) file_fail(where, ": shortcut takes no arguments, got '", tokens[1], "'");
      if (open.empty() || open.back().kind != FileNode::Kind::kResidual) {
        file_fail(where, ": 'shortcut' outside a residual block",
                  open.empty()
                      ? std::string()
                      : " (the innermost open block is the repeat at " + location(open.back().line) + ")");
      }
      FileNode& block = open.back();
      if (block.has_shortcut) {
        file_fail(where, ": a second 'shortcut' in the residual block opened at ", location(block.line),
                  " (its shortcut section began at ", location(block.shortcut_line), ")");
      }
      if (block.body.empty()) {
        file_fail(where, ": the residual block opened at ", location(block.line), " has an empty body");
      }
      block.has_shortcut = true;
      block.shortcut_line = line_number;
      continue;
    }
    if (word == "end") {
      if (tokens.size() > 1) file_fail(where, ": end takes no arguments, got '", tokens[1], "'");
      if (open.empty()) file_fail(where, ": 'end' with no open block (residual or repeat)");
      FileNode block = std::move(open.back());
      open.pop_back();
      block.end_line = line_number;
      if (block.body.empty()) {
        file_fail(where, ": the ", block_name(block), " block opened at ", location(block.line), " has ",
                  block.kind == FileNode::Kind::kResidual ? "an empty body" : "no lines");
      }
      if (block.has_shortcut && block.shortcut.empty()) {
        file_fail(where, ": the shortcut section of the residual block opened at ", location(block.line),
                  " (at ", location(block.shortcut_line), ") is empty; remove 'shortcut' for the identity");
      }
      block.layers = block.kind == FileNode::Kind::kRepeat
                         ? static_cast<double>(block.count) * count_layers(block.body)
                         : 1 + count_layers(block.body) + 1 +
                               (block.has_shortcut ? count_layers(block.shortcut) + 1 : 0);
      if (block.kind == FileNode::Kind::kRepeat && block.count > kMaxRepeat) {
        file_fail(location(block.line), ": repeat ", block.count, ": at most ", kMaxRepeat,
                  " copies (this one would make ", layer_count_str(block.layers),
                  " layers; a model has at most ", with_commas(limits.max_layers), ")");
      }
      if (block.layers > static_cast<double>(limits.max_layers)) {
        file_fail(location(block.line), ": ", block.tokens[0],
                  block.tokens.size() > 1 ? " " + block.tokens[1] : "", ": the block would make ",
                  layer_count_str(block.layers), " layers; a model has at most ",
                  with_commas(limits.max_layers));
      }
      push(std::move(block));
      continue;
    }
    if (word == "in")
      file_fail(where, ": 'in' stands for a channel count in a layer line; it is not a layer");
    if (is_reserved_keyword(word)) {
      file_fail(where, ": '", word,
                "' is a keyword reserved for later (save, add, concat, from, branch), not a layer");
    }
    FileNode layer;
    layer.line = line_number;
    layer.tokens = std::move(tokens);
    push(std::move(layer));
  }
  if (!open.empty()) {
    const FileNode& block = open.back();
    file_fail(location(line_number), ": end of file inside the ", block_name(block), " block opened at ",
              location(block.line), "; close it with 'end'");
  }
  return top;
}
}  // namespace tg::model_file_detail
