// The thread pool (core/runtime/threads.hpp): the thread-count setting, parallel_for, parallel_sgemm.
#include <doctest/doctest.h>

#include <algorithm>
#include <vector>

#include "core/kernels/blas.hpp"
#include "tapegrad.hpp"
#include "test_util.hpp"

using test_util::ScopedNumThreads;

TEST_CASE("set_num_threads sets the count and rejects n < 1") {
  const int before = tg::num_threads();
  CHECK(before >= 1);
  {
    const ScopedNumThreads one(1);
    CHECK(tg::num_threads() == 1);
    CHECK_THROWS_AS(tg::set_num_threads(0), tg::Error);
  }
  CHECK(tg::num_threads() == before);
}

TEST_CASE("parallel_for covers every index once, with any thread count and job size") {
  for (int threads : {1, 2, 3, 5}) {
    const ScopedNumThreads count(threads);
    for (std::size_t n : {0, 1, 2, 3, 7, 64, 1000}) {
      CAPTURE(threads);
      CAPTURE(n);
      std::vector<int> hits(n, 0);
      tg::parallel_for(n, [&](std::size_t b, std::size_t e) {
        for (std::size_t i = b; i < e; ++i) ++hits[i];
      });
      CHECK(std::count(hits.begin(), hits.end(), 1) == static_cast<long>(n));
    }
  }
}

TEST_CASE("parallel_for rethrows an error thrown in a chunk") {
  const ScopedNumThreads count(5);
  CHECK_THROWS_WITH_AS(tg::parallel_for(8,
                                        [](std::size_t b, std::size_t) {
                                          if (b == 0) throw tg::Error("chunk failed");
                                        }),
                       "chunk failed", tg::Error);
}

// Two threads call OpenBLAS's SGEMM at once (parallel_sgemm). Debian's openblas-serial build hands both
// callers the same buffer now and then (no locking), which gave different logits run to run in train_mnist;
// tapegrad links the pthread build, which locks its buffers. The race is rare per call, hence the many small
// products. Where the build has AVX-512, tapegrad's own kernel takes every product unless told not to.
TEST_CASE("parallel_sgemm on OpenBLAS at 2 threads gives the same bits every time") {
  const ScopedNumThreads two(2);
  const test_util::ScopedOwnGemm openblas(false);
  REQUIRE_FALSE(tg::own_gemm());
  const std::size_t m = 64, n = 120, k = 400;
  const tg::Array a = tg::randn({m, k}), b = tg::randn({n, k});
  tg::Array first = tg::Array::from_shape({m, n}), again = first;
  tg::parallel_sgemm(false, true, m, n, k, 1.f, a.data(), b.data(), 0.f, first.data());
  int differing = 0;
  for (int run = 0; run < 20000; ++run) {
    tg::parallel_sgemm(false, true, m, n, k, 1.f, a.data(), b.data(), 0.f, again.data());
    differing += again != first;
  }
  CHECK(differing == 0);
}
