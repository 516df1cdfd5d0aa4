// The framework's threads: our own parallel loops (over images of a batch, rows of an array) and OpenBLAS's
// threads, never both at once: parallel_for bodies must not call SGEMM, and SGEMM runs outside them.
#pragma once

#include <cstddef>
#include <functional>

namespace tg {

// Sets all of the framework's threads, OpenBLAS's included; n >= 1, else tg::Error.
void set_num_threads(int n);
// Default: the machine's cores.
int num_threads();

// Runs body(begin, end) over [0, n) split into at most num_threads() contiguous chunks, on the calling
// thread and the pool's workers; returns when all are done. Runs inline when n is small (below `grain`
// items per thread) or when called from inside another parallel_for. The first exception is rethrown.
// Elements per thread below which an elementwise loop stays on one thread (waking a worker costs more).
inline constexpr std::size_t kElementGrain = 1 << 15;

void parallel_for(std::size_t n, const std::function<void(std::size_t begin, std::size_t end)>& body,
                  std::size_t grain = 1);

}  // namespace tg
