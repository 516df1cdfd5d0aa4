#include "core/threads.hpp"

#include <atomic>
#include <thread>

#include "core/blas.hpp"
#include "core/error.hpp"

namespace tg {
namespace {

int machine_cores() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

std::atomic<int>& thread_count() {
  static std::atomic<int> count{machine_cores()};
  return count;
}

}  // namespace

void set_num_threads(int n) {
  if (n < 1) fail("set_num_threads: expected n >= 1, got ", n);
  thread_count() = n;
  blas_set_num_threads(n);
}

int num_threads() { return thread_count(); }

}  // namespace tg
