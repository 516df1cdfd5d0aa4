// Default initialization (layers/init.hpp): PyTorch's ranges and statistics, from the seedable generator.
#include <doctest/doctest.h>

#include <cmath>
#include <sstream>

#include "tapegrad.hpp"
#include "test_util.hpp"

using tg::Array;
using tg::Tensor;

TEST_CASE("default initialization follows PyTorch's ranges and statistics") {
  const test_util::ScopedSeed seed(0);
  tg::Conv2D conv(16, 32, 5);  // fan_in = 400, bound 0.05
  tg::Linear fc(9216, 128);    // fan_in = 9216, bound ~0.0104
  const float conv_bound = 1.f / std::sqrt(400.f), fc_bound = 1.f / std::sqrt(9216.f);
  CHECK(xt::amax(xt::abs(conv.weight.value()))() <= conv_bound);
  CHECK(xt::amax(xt::abs(conv.bias.value()))() <= conv_bound);
  CHECK(xt::amax(xt::abs(fc.weight.value()))() <= fc_bound);
  CHECK(xt::amax(xt::abs(fc.bias.value()))() <= fc_bound);
  // U(-b, b): mean 0, std b / sqrt(3); the maximum comes close to b
  const double std_expected = fc_bound / std::sqrt(3.0);
  CHECK(xt::stddev(fc.weight.value())() == doctest::Approx(std_expected).epsilon(0.01));
  CHECK(std::abs(xt::mean(fc.weight.value())()) < 0.01 * fc_bound);
  CHECK(xt::amax(conv.weight.value())() > 0.99f * conv_bound);
  CHECK(conv.weight.shape() == tg::Shape{32, 16, 5, 5});
  // same seed, same weights
  tg::manual_seed(0);  // inside the ScopedSeed above
  tg::Conv2D again(16, 32, 5);
  CHECK(again.weight.value() == conv.weight.value());
}
