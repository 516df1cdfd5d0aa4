// Files written so that nothing is ever half-written: temp file beside the target, fsync, rename.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace tg {

// Writes the chunks, in order, as the new content of `path`. On failure throws tg::Error naming the path
// and the reason; any previous file at `path` is left unchanged and no temp file remains.
void write_file_atomically(const std::string& path,
                           const std::vector<std::pair<const void*, std::size_t>>& chunks);

}  // namespace tg
