// The seedable generator (core/runtime/random.hpp): manual_seed repeats, ranges and moments.
#include <doctest/doctest.h>

#include "tapegrad.hpp"
#include "test_util.hpp"

TEST_CASE("manual_seed makes the framework's random numbers repeat exactly") {
  const test_util::ScopedSeed restore(42);  // the generator's state before this test comes back at its end
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
