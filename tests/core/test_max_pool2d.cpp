// max_pool2d (core/ops/pooling.hpp, kernels in core/kernels/max_pool2d.hpp): gradchecks, PyTorch fixtures
// (also conv2d then max_pool2d), tie-breaking, -inf padding, output shapes, errors.
#include <doctest/doctest.h>

#include <array>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "fixture_runner.hpp"
#include "tapegrad.hpp"
#include "test_util.hpp"

using tg::Array;
using tg::Tensor;
using namespace test_util;

namespace {

// {"kernel": [kh, kw], "stride": [sh, sw], "padding": [ph, pw]}
tg::MaxPool2dOptions pool_options(const Json& o) {
  const auto [kh, kw] = pair_of(o, "kernel");
  const auto [sh, sw] = pair_of(o, "stride");
  const auto [ph, pw] = pair_of(o, "padding");
  return {.kernel = {kh, kw}, .stride = {sh, sw}, .padding = {ph, pw}};
}

bool has_ties(const Json& c) { return c.value("ties", false); }

// Distinct values, so no two elements of a window tie within the finite-difference step.
Tensor distinct(const tg::Shape& shape, std::uint64_t seed) {
  tg::Generator gen(seed);
  Array v = Array::from_shape(shape);
  std::vector<std::size_t> perm(v.size());
  std::iota(perm.begin(), perm.end(), 0);
  for (std::size_t i = perm.size(); i > 1; --i) std::swap(perm[i - 1], perm[gen.below(i)]);
  for (std::size_t i = 0; i < v.size(); ++i) v.data()[i] = 0.1f * static_cast<float>(perm[i]);
  return Tensor(std::move(v), true);
}

}  // namespace

// ---- gradcheck and PyTorch -------------------------------------------------------------------------------

GRADCHECK_TEST_CASE("max_pool2d", "with overlapping windows and padding") {
  check_gradients(
      [](const Inputs& in) {
        return tg::max_pool2d(in[0], {.kernel = {2, 2}});
      },
      {distinct({2, 2, 4, 4}, 1)});
  check_gradients(
      [](const Inputs& in) {
        return tg::max_pool2d(in[0], {.kernel = {3, 3}, .stride = {1, 1}});
      },
      {distinct({1, 2, 5, 5}, 2)});
  check_gradients(
      [](const Inputs& in) {
        return tg::max_pool2d(in[0], {.kernel = {3, 2}, .stride = {2, 1}, .padding = {1, 1}});
      },
      {distinct({2, 1, 6, 5}, 3)});
}

PYTORCH_TEST_CASE("max_pool2d", "overlapping windows, -inf padding, rectangular windows") {
  check_pytorch_cases(
      kConvPool, op,
      [](const Inputs& t, const Json& c) { return tg::max_pool2d(t[0], pool_options(c.at("options"))); },
      [](const Json& c) { return !has_ties(c); }, {"x"});
}

PYTORCH_TEST_CASE("max_pool2d", "the gradient goes to the first maximum of a window on ties") {
  check_pytorch_cases(
      kConvPool, op,
      [](const Inputs& t, const Json& c) { return tg::max_pool2d(t[0], pool_options(c.at("options"))); },
      has_ties, {"x"});
}

PYTORCH_TEST_CASE("conv2d_then_pool", "conv2d then max_pool2d, gradients for x, weight and bias") {
  check_pytorch_cases(kConvPool, op,
                      [](const Inputs& t, const Json& c) {
                        const Json& o = c.at("options");
                        return tg::max_pool2d(tg::conv2d(t[0], t[1], t[2], conv2d_options(o.at("conv"))),
                                              pool_options(o.at("pool")));
                      },
                      {}, {"x", "weight", "bias"});
}

// ---- behaviour, shapes and errors ------------------------------------------------------------------------

TEST_CASE("max_pool2d routes the gradient to the first maximum of a window on ties") {
  Tensor x(Array{{{{1.f, 3.f, 3.f, 0.f}, {3.f, 2.f, 0.f, 3.f}}}}, true);  // [1, 1, 2, 4]
  Tensor y = tg::max_pool2d(x, {.kernel = {2, 2}});
  CHECK(y.value() == Array{{{{3.f, 3.f}}}});
  tg::sum(y).backward();
  CHECK(x.grad() == Array{{{{0.f, 1.f, 1.f, 0.f}, {0.f, 0.f, 0.f, 0.f}}}});
}

TEST_CASE("max_pool2d pads with -inf: an all-negative border is never replaced by a zero") {
  const ClearTapeOnExit clear_tape;
  Tensor x(xt::full_like(Array::from_shape({1, 1, 3, 3}), -5.f), true);
  const Array y = tg::max_pool2d(x, {.kernel = {2, 2}, .stride = {2, 2}, .padding = {1, 1}}).value();
  CHECK(y.shape() == tg::Shape{1, 1, 2, 2});
  CHECK(xt::amax(y)() == -5.f);
}

TEST_CASE("max_pool2d gives the seed documents' output shapes") {
  const ClearTapeOnExit clear_tape;
  const Tensor conv =
      tg::conv2d(param({1, 3, 28, 28}, 1), param({4, 3, 2, 2}, 2), param({4}, 3), {.stride = {2, 2}});
  CHECK(tg::max_pool2d(conv, {.kernel = {2, 2}, .stride = {2, 2}}).shape() == tg::Shape{1, 4, 7, 7});
  CHECK(tg::max_pool2d(param({1, 2, 3, 3}, 7), {.kernel = {2, 2}, .stride = {2, 2}}).shape() ==
        tg::Shape{1, 2, 1, 1});
  CHECK(tg::max_pool2d(param({32, 3, 28, 28}, 8), {.kernel = {4, 4}, .stride = {2, 2}}).shape() ==
        tg::Shape{32, 3, 13, 13});
}

TEST_CASE("max_pool2d rejects bad shapes and options") {
  CHECK_THROWS_WITH_AS(tg::max_pool2d(param({1, 1, 3, 3}, 1), {.kernel = {4, 4}}),
                       "max_pool2d: kernel 4x4 is larger than the padded input 3x3 (input [1, 1, 3, 3])",
                       tg::Error);
  CHECK_THROWS_WITH_AS(tg::max_pool2d(param({1, 3, 3}, 1), {.kernel = {2, 2}}),
                       "max_pool2d: expected input [N, C, H, W], got [1, 3, 3]", tg::Error);
  CHECK_THROWS_AS(tg::max_pool2d(param({1, 1, 6, 6}, 1), {.kernel = {2, 2}, .padding = {2, 2}}), tg::Error);
  CHECK_THROWS_AS(tg::max_pool2d(param({1, 1, 6, 6}, 1), {.kernel = {0, 2}}), tg::Error);
}

TEST_CASE("max_pool2d rejects an input without pixels") {
  CHECK_THROWS_WITH_AS(
      tg::max_pool2d(Tensor(xt::zeros<float>({1, 1, 0, 4}), true), {.kernel = {2, 2}, .padding = {1, 1}}),
      doctest::Contains("max_pool2d: the input has no pixels"), tg::Error);
}
