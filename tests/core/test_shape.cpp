// Reductions and shape ops (core/ops/shape.hpp): sum, mean, reshape, flatten. Gradchecks, PyTorch fixtures,
// errors, behaviour.
#include <doctest/doctest.h>

#include <vector>

#include "fixture_runner.hpp"
#include "tapegrad.hpp"
#include "test_util.hpp"

using tg::Array;
using tg::Tensor;
using namespace test_util;

namespace {

// tg::reshape takes the new shape as a braced list (`tg::reshape(x, {-1, 4})`); the fixture gives a JSON
// array.
Tensor reshape_to(const Tensor& x, const Json& new_shape) {
  const std::vector<int> s = new_shape.get<std::vector<int>>();
  switch (s.size()) {
    case 1:
      return tg::reshape(x, {s[0]});
    case 2:
      return tg::reshape(x, {s[0], s[1]});
    case 3:
      return tg::reshape(x, {s[0], s[1], s[2]});
    case 4:
      return tg::reshape(x, {s[0], s[1], s[2], s[3]});
    default:
      FAIL("reshape fixture with ", s.size(), " dims is not supported by this test");
  }
  return {};
}

}  // namespace

GRADCHECK_TEST_CASE("sum", "to a 0-d scalar") {
  check_gradients([](const Inputs& in) { return tg::sum(in[0]); }, {param({2, 3, 4}, 1)});
}

GRADCHECK_TEST_CASE("mean", "to a 0-d scalar") {
  check_gradients([](const Inputs& in) { return tg::mean(in[0]); }, {param({2, 3, 4}, 2)});
}

GRADCHECK_TEST_CASE("reshape", "with an inferred -1, through a fixed weighting so the layout matters") {
  const Tensor weights = param({6, 4}, 5);
  check_gradients(
      [weights](const Inputs& in) {
        return tg::reshape(in[0], {-1, 4}) * weights;
      },
      {param({2, 3, 4}, 3)});
}

GRADCHECK_TEST_CASE("flatten", "of an NCHW batch") {
  check_gradients([](const Inputs& in) { return tg::flatten(in[0]); }, {param({2, 3, 2, 2}, 4)});
}

PYTORCH_TEST_CASE("sum", "to a 0-d scalar") {
  check_pytorch_cases(kCoreOps, op, [](const Inputs& t, const Json&) { return tg::sum(t[0]); });
}

PYTORCH_TEST_CASE("mean", "to a 0-d scalar") {
  check_pytorch_cases(kCoreOps, op, [](const Inputs& t, const Json&) { return tg::mean(t[0]); });
}

PYTORCH_TEST_CASE("reshape", "to the fixture's new shape") {
  check_pytorch_cases(kCoreOps, op,
                      [](const Inputs& t, const Json& c) { return reshape_to(t[0], c.at("new_shape")); });
}

PYTORCH_TEST_CASE("flatten", "torch.flatten(x, 1)") {
  check_pytorch_cases(kCoreOps, op, [](const Inputs& t, const Json&) { return tg::flatten(t[0]); });
}

TEST_CASE("sum and mean reduce to a 0-d scalar") {
  const Tensor x(Array{{-1.f, 0.5f}, {2.f, -3.f}});
  CHECK(tg::sum(x).item() == -1.5f);
  CHECK(tg::mean(x).item() == -0.375f);
}

TEST_CASE("reshape infers one -1 and flatten keeps the batch axis") {
  const Tensor a(Array{{1.f, 2.f, 3.f}, {4.f, 5.f, 6.f}});
  CHECK(tg::reshape(a, {-1, 2}).shape() == tg::Shape{3, 2});
  CHECK(tg::flatten(Tensor(xt::zeros<float>({4, 1, 2, 3}))).shape() == tg::Shape{4, 6});
}

TEST_CASE("reshape and flatten reject impossible shapes") {
  CHECK_THROWS_WITH_AS(tg::reshape(zeros_leaf({2, 3}), {-1, 4}),
                       "reshape: cannot reshape [2, 3] (6 elements) into [-1, 4]", tg::Error);
  CHECK_THROWS_WITH_AS(tg::reshape(zeros_leaf({2, 3}), {-1, -1}), doctest::Contains("only one -1"),
                       tg::Error);
  CHECK_THROWS_WITH_AS(tg::reshape(zeros_leaf({2, 3}), {7}), doctest::Contains("into [7]"), tg::Error);
  CHECK_THROWS_AS(tg::flatten(Tensor(Array(1.f))), tg::Error);
}
