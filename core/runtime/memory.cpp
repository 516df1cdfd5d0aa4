#include "core/runtime/memory.hpp"

#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

namespace tg {
namespace {

bool g_reuse = false;

// The end of the heap already advised to use huge pages (see advise_huge_pages).
std::atomic<std::uintptr_t> g_advised_end{0};

// Applied during static initialization of the library (this file is always linked: tensor.cpp uses it).
const bool g_applied = [] {
  set_memory_reuse(true);
  return true;
}();

}  // namespace

void set_memory_reuse(bool on) {
#ifdef __GLIBC__
  if (on) {
    mallopt(M_MMAP_MAX, 0);              // large blocks from the heap, not fresh mmaps
    mallopt(M_TRIM_THRESHOLD, 1 << 30);  // keep up to 1 GiB of free heap instead of returning it
    mallopt(M_TOP_PAD, 64 << 20);        // grow the heap in 64 MiB steps
    g_advised_end.store(reinterpret_cast<std::uintptr_t>(sbrk(0)), std::memory_order_relaxed);
  } else {
    mallopt(M_MMAP_MAX, 65536);  // glibc's defaults
    mallopt(M_TRIM_THRESHOLD, 128 * 1024);
    mallopt(M_TOP_PAD, 0);
  }
#endif
  g_reuse = on;
}

bool memory_reuse() { return g_reuse && g_applied; }

void release_free_memory() {
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

void advise_huge_pages() {
#ifdef __GLIBC__
  if (!g_reuse) return;
  const auto end = reinterpret_cast<std::uintptr_t>(sbrk(0));  // glibc's cached break: no system call
  const std::uintptr_t done = g_advised_end.load(std::memory_order_relaxed);
  if (end > done) {
    // The heap grew since the last call: the new part (from the page holding the old end) gets huge pages.
    // A failure (a kernel without transparent huge pages) leaves ordinary pages: nothing to report.
    const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
    const std::uintptr_t start = done & ~(page - 1);
    madvise(reinterpret_cast<void*>(start), end - start, MADV_HUGEPAGE);
  }
  if (end != done)
    g_advised_end.store(end, std::memory_order_relaxed);  // a trimmed heap re-advises its regrowth
#endif
}

}  // namespace tg
