// Memory reuse (core/runtime/memory.hpp): glibc keeps freed blocks, and the heap grown by a new buffer is
// advised to use transparent huge pages before a kernel writes it.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "core/runtime/memory.hpp"
#include "tapegrad.hpp"
#include "test_util.hpp"

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

// The advice must come before the first write: a page written before it is faulted in as 4 KiB. So the
// buffer is fresh heap that nothing has written (new float[], not a zero-filled vector), it is written only
// inside parallel_for, and each chunk reads the mapping's flags before its first write.
TEST_CASE("a fresh buffer that grows the heap is advised to use huge pages before parallel_for writes it") {
  if (!transparent_huge_pages()) {
    MESSAGE("this kernel has no transparent huge pages; nothing to check");
    return;
  }
#if defined(__SANITIZE_ADDRESS__)
  MESSAGE("AddressSanitizer's allocator replaces glibc's heap; nothing to check");
  return;
#endif
  REQUIRE(tg::memory_reuse());
  const test_util::ScopedNumThreads threads(3);
  // A buffer whose last part lies in memory the heap grows by when it is allocated (pages nothing has
  // written). Free heap blocks (earlier tests' buffers, never trimmed) are served first: those are taken and
  // kept aside, untouched, until an allocation grows the heap.
  const std::size_t n = 96u << 20 >> 2;  // 96 MiB, more than the heap's 64 MiB padding
  std::vector<std::unique_ptr<float[]>> taken;
  std::unique_ptr<float[]> big;
  const float* probe = nullptr;  // 4 MiB before the end, in the grown part
  for (int attempt = 0; attempt < 8 && !big; ++attempt) {
    const auto old_break = reinterpret_cast<std::uintptr_t>(sbrk(0));
    std::unique_ptr<float[]> p(new float[n]);  // default-initialized: nothing written
    const float* at = p.get() + n - (4u << 20) / sizeof(float);
    if (reinterpret_cast<std::uintptr_t>(at) >= old_break) {
      big = std::move(p);
      probe = at;
    } else {
      taken.push_back(std::move(p));
    }
  }
  REQUIRE(big);

  std::mutex mutex;
  std::vector<std::string> flags_before_writes;
  tg::parallel_for(n, [&](std::size_t i0, std::size_t i1) {
    const std::string flags = vm_flags_of(probe);
    {
      const std::lock_guard<std::mutex> lock(mutex);
      flags_before_writes.push_back(flags);
    }
    for (std::size_t i = i0; i < i1; ++i) big[i] = 1.f;
  });
  CHECK(big[n / 2] == 1.f);
  REQUIRE(flags_before_writes.size() == 3);
  for (const std::string& flags : flags_before_writes) {
    INFO(flags);
    CHECK(flags.find(" hg") != std::string::npos);  // MADV_HUGEPAGE
  }
}

namespace {

// This process's resident memory in KiB (/proc/self/status VmRSS).
long resident_kib() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

}  // namespace

TEST_CASE("release_free_memory hands freed heap pages back; memory reuse alone keeps them") {
  const test_util::ScopedMemoryReuse reuse(true);
  constexpr std::size_t kBytes = 96u << 20;
  auto big = std::make_unique<char[]>(kBytes);
  for (std::size_t i = 0; i < kBytes; i += 4096) big[i] = 1;  // resident
  const auto after = std::make_unique<char[]>(64);  // allocated after it, live to the end of the test
  const long touched = resident_kib();
  big.reset();
  const long freed = resident_kib();
  tg::release_free_memory();
  const long released = resident_kib();
  INFO("resident KiB: touched ", touched, ", freed ", freed, ", released ", released);
  CHECK(freed > touched - 16 * 1024);   // kept for reuse
  CHECK(released < freed - 64 * 1024);  // at least 64 of the 96 MiB went back
}
