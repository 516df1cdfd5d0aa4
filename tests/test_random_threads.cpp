// The seedable generator and the thread-count setting.
#include <doctest/doctest.h>

#include "core/kernels/blas.hpp"
#include "tapegrad.hpp"

TEST_CASE("manual_seed makes the framework's random numbers repeat exactly") {
  tg::manual_seed(42);
  const tg::Array a = tg::rand_uniform({100}, -1.f, 1.f);
  const tg::Array n1 = tg::randn({100});
  tg::manual_seed(42);
  const tg::Array b = tg::rand_uniform({100}, -1.f, 1.f);
  const tg::Array n2 = tg::randn({100});
  CHECK(a == b);
  CHECK(n1 == n2);
  tg::manual_seed(43);
  CHECK(tg::rand_uniform({100}, -1.f, 1.f) != a);
}

TEST_CASE("uniform and normal samples have the right range and moments") {
  tg::Generator gen(7);
  const tg::Array u = tg::rand_uniform({20000}, -2.f, 3.f, gen);
  CHECK(xt::amin(u)() >= -2.f);
  CHECK(xt::amax(u)() < 3.f);
  CHECK(xt::mean(u)() == doctest::Approx(0.5).epsilon(0.05));
  const tg::Array n = tg::randn({20000}, gen);
  CHECK(xt::mean(n)() == doctest::Approx(0.0).epsilon(0.03).scale(1.0));
  CHECK(xt::stddev(n)() == doctest::Approx(1.0).epsilon(0.03));
  for (int i = 0; i < 1000; ++i) CHECK(gen.below(7) < 7u);
}

TEST_CASE("set_num_threads sets the count and rejects n < 1") {
  const int before = tg::num_threads();
  CHECK(before >= 1);
  tg::set_num_threads(1);
  CHECK(tg::num_threads() == 1);
  CHECK_THROWS_AS(tg::set_num_threads(0), tg::Error);
  tg::set_num_threads(before);
  CHECK(tg::num_threads() == before);
}

TEST_CASE("parallel_for covers every index once, with any thread count and job size, and rethrows errors") {
  const int before = tg::num_threads();
  for (int threads : {1, 2, 3, 5}) {
    tg::set_num_threads(threads);
    for (std::size_t n : {0, 1, 2, 3, 7, 64, 1000}) {
      std::vector<int> hits(n, 0);
      tg::parallel_for(n, [&](std::size_t b, std::size_t e) {
        for (std::size_t i = b; i < e; ++i) ++hits[i];
      });
      CHECK(std::count(hits.begin(), hits.end(), 1) == static_cast<long>(n));
    }
  }
  CHECK_THROWS_WITH_AS(tg::parallel_for(8, [](std::size_t b, std::size_t) {
                         if (b == 0) throw tg::Error("chunk failed");
                       }),
                       "chunk failed", tg::Error);
  tg::set_num_threads(before);
}

// Two threads call SGEMM at once (parallel_sgemm). Debian's openblas-serial build hands both callers the same
// buffer now and then (no locking), which gave different logits run to run in train_mnist; tapegrad links the
// pthread build, which locks its buffers. The race is rare per call, hence the many small products.
TEST_CASE("parallel_sgemm at 2 threads gives the same bits every time") {
  const int before = tg::num_threads();
  tg::set_num_threads(2);
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
  tg::set_num_threads(before);
}
