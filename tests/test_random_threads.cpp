// The seedable generator and the thread-count setting.
#include <doctest/doctest.h>

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
