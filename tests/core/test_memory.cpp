// Memory reuse (core/runtime/memory.hpp): glibc keeps freed blocks, and the heap grown by a new buffer is
// advised to use transparent huge pages before a kernel writes it.
#include <doctest/doctest.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/runtime/memory.hpp"
#include "tapegrad.hpp"

namespace {

// The VmFlags line of /proc/self/smaps for the mapping that holds address p ("" if none).
std::string vm_flags_of(const void* p) {
  std::ifstream smaps("/proc/self/smaps");
  const auto at = reinterpret_cast<std::uintptr_t>(p);
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    std::uintptr_t lo = 0, hi = 0;
    char dash = 0;
    std::istringstream range(line);
    if (range >> std::hex >> lo >> dash >> hi && dash == '-') inside = lo <= at && at < hi;
    if (inside && line.rfind("VmFlags:", 0) == 0) return line;
  }
  return "";
}

bool transparent_huge_pages() {
  return static_cast<bool>(std::ifstream("/sys/kernel/mm/transparent_hugepage/enabled"));
}

}  // namespace

TEST_CASE("a buffer that grows the heap is advised to use huge pages before parallel_for writes it") {
  if (!transparent_huge_pages()) {
    MESSAGE("this kernel has no transparent huge pages; nothing to check");
    return;
  }
#if defined(__SANITIZE_ADDRESS__)
  MESSAGE("AddressSanitizer's allocator replaces glibc's heap; nothing to check");
  return;
#endif
  REQUIRE(tg::memory_reuse());
  std::vector<float> big(96u << 20 >> 2);  // 96 MiB: more than the heap's 64 MiB padding, so the heap grows
  tg::parallel_for(big.size(), [&](std::size_t i0, std::size_t i1) {
    for (std::size_t i = i0; i < i1; ++i) big[i] = 1.f;
  });
  const std::string flags = vm_flags_of(big.data() + big.size() / 2);
  INFO(flags);
  CHECK(flags.find(" hg") != std::string::npos);  // MADV_HUGEPAGE
}
