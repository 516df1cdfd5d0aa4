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

// Removes the temp file of a write in progress, if any. Async-signal-safe: a signal handler that ends the
// process calls it first, so that a second Ctrl-C in the middle of a checkpoint leaves no `.tmp.PID` file
// (the target itself is never half-written).
void remove_unfinished_file() noexcept;

}  // namespace tg
