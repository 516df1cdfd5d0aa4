#include "core/io/atomic_file.hpp"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/base/error.hpp"

namespace tg {
namespace {

// The one write in progress (checkpoints are written by one thread at a time). A plain buffer and an atomic
// flag, as a signal handler may read them.
char g_unfinished[4096];
std::atomic<bool> g_has_unfinished{false};

struct UnfinishedFile {
  explicit UnfinishedFile(const std::string& tmp) {
    if (tmp.size() >= sizeof g_unfinished) return;
    std::memcpy(g_unfinished, tmp.c_str(), tmp.size() + 1);
    g_has_unfinished.store(true);
  }
  ~UnfinishedFile() { g_has_unfinished.store(false); }
  UnfinishedFile(const UnfinishedFile&) = delete;
  UnfinishedFile& operator=(const UnfinishedFile&) = delete;
};

}  // namespace

void remove_unfinished_file() noexcept {
  if (g_has_unfinished.load()) ::unlink(g_unfinished);
}

void write_file_atomically(const std::string& path,
                           const std::vector<std::pair<const void*, std::size_t>>& chunks) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) fail("cannot write ", path, ": ", std::strerror(errno), " (any previous file there is unchanged)");
  const UnfinishedFile unfinished(tmp);
  bool ok = true;
  for (const auto& [data, size] : chunks) ok = ok && (size == 0 || std::fwrite(data, 1, size, f) == size);
  ok = ok && std::fflush(f) == 0 && ::fsync(::fileno(f)) == 0;
  int saved_errno = errno;
  if (std::fclose(f) != 0 && ok) {
    ok = false;
    saved_errno = errno;
  }
  if (ok && std::rename(tmp.c_str(), path.c_str()) != 0) {
    ok = false;
    saved_errno = errno;
  }
  if (!ok) {
    std::remove(tmp.c_str());
    fail("cannot write ", path, ": ", std::strerror(saved_errno), " (any previous file there is unchanged)");
  }
}

}  // namespace tg
