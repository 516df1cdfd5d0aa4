// The block structure of a model file: its lines parsed into a tree of layers and blocks (residual, shortcut,
// repeat), with the line of each, before anything is built. layers/model_file.cpp builds the modules from the
// tree; the fuzzer of model files reaches both through model_from_text. Internal to layers/: tapegrad.hpp
// does not include it.
#pragma once

#include <cstddef>
#include <sstream>
#include <string>
#include <vector>

#include "layers/model_file.hpp"

namespace tg::model_file_detail {

// Every fault of the file itself is a ModelFileError (the command line exits 2 for it, as for a usage error).
template <class... Parts>
[[noreturn]] void file_fail(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  throw ModelFileError(out.str());
}

// One line of the file, or a block with the lines inside it.
struct FileNode {
  enum class Kind { kLayer, kResidual, kRepeat };
  Kind kind = Kind::kLayer;
  std::size_t line = 0;             // the layer's line, or the line that opens the block
  std::vector<std::string> tokens;  // a layer's tokens; a block's opening line
  std::vector<FileNode> body;       // a block's lines (residual: the body)
  std::vector<FileNode> shortcut;   // residual: the shortcut section's lines
  bool has_shortcut = false;
  std::size_t shortcut_line = 0;  // the 'shortcut' line
  std::size_t end_line = 0;       // the 'end' line
  long long count = 1;            // repeat: the number of copies (checked against kMaxRepeat at 'end')
  double layers = 1;              // modules this node makes, blocks and their contents (repeats multiplied)
};

// The lines of `text` as a tree of blocks; ModelFileError (file:line) for a fault of the block structure
// (unclosed, empty, misplaced 'shortcut' or 'end', repeat counts, nesting and size limits).
std::vector<FileNode> parse_blocks(const std::string& text, const std::string& source_name,
                                   const ModelFileLimits& limits);

}  // namespace tg::model_file_detail
