#include "core/runtime/memory.hpp"

#include <malloc.h>

namespace tg {
namespace {

bool g_reuse = false;

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
  } else {
    mallopt(M_MMAP_MAX, 65536);  // glibc's defaults
    mallopt(M_TRIM_THRESHOLD, 128 * 1024);
    mallopt(M_TOP_PAD, 0);
  }
#endif
  g_reuse = on;
}

bool memory_reuse() { return g_reuse && g_applied; }

}  // namespace tg
