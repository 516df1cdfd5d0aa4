// The framework's threads: one pool of our own for parallel loops (over images of a batch, rows of an array).
// OpenBLAS stays single-threaded under it (core/kernels/blas.hpp), so parallel_for bodies may call sgemm (the
// conv kernels do, one product per chunk of images) and parallel_sgemm splits a product over the pool.
#pragma once

#include <cstddef>
#include <functional>

namespace tg {

// Sets the size of tapegrad's pool (OpenBLAS stays at one thread); n >= 1, else tg::Error.
void set_num_threads(int n);
// Default: the machine's cores.
int num_threads();

// Runs body(begin, end) over [0, n) split into at most num_threads() contiguous chunks, on the calling
// thread and the pool's workers; returns when all are done. Runs inline when n is small (below `grain`
// items per thread) or when called from inside another parallel_for. The first exception is rethrown.
void parallel_for(std::size_t n, const std::function<void(std::size_t begin, std::size_t end)>& body,
                  std::size_t grain = 1);

// The grain of elementwise loops (ops, optimizer updates): elements per thread below which a loop stays on
// one thread. Waking a worker costs tens of microseconds (threads.cpp); a smaller chunk (128 KiB of floats)
// costs less to run here than to hand over.
inline constexpr std::size_t kElementGrain = 1 << 15;

}  // namespace tg
