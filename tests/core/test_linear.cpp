// Matrix products (core/ops/linear.hpp): matmul and linear. Gradchecks, PyTorch fixtures, errors, behaviour.
#include <doctest/doctest.h>

#include "fixture_runner.hpp"
#include "tapegrad.hpp"
#include "test_util.hpp"

using tg::Array;
using tg::Tensor;
using namespace test_util;

GRADCHECK_TEST_CASE("matmul", "of a 3x4 by a 4x5 matrix") {
  check_gradients([](const Inputs& in) { return tg::matmul(in[0], in[1]); },
                  {param({3, 4}, 1), param({4, 5}, 2)});
}

GRADCHECK_TEST_CASE("linear", "with and without bias") {
  check_gradients([](const Inputs& in) { return tg::linear(in[0], in[1], in[2]); },
                  {param({4, 6}, 3), param({3, 6}, 4), param({3}, 5)});
  check_gradients([](const Inputs& in) { return tg::linear(in[0], in[1], Tensor{}); },
                  {param({4, 6}, 6), param({3, 6}, 7)});
}

PYTORCH_TEST_CASE("matmul", "square and rectangular") {
  check_pytorch_cases(kCoreOps, op, [](const Inputs& t, const Json&) { return tg::matmul(t[0], t[1]); });
}

PYTORCH_TEST_CASE("linear", "F.linear with bias") {
  check_pytorch_cases(kCoreOps, op,
                      [](const Inputs& t, const Json&) { return tg::linear(t[0], t[1], t[2]); });
}

PYTORCH_TEST_CASE("linear_nobias", "F.linear without bias (tg::linear with an undefined Tensor{})") {
  check_pytorch_cases(kCoreOps, op,
                      [](const Inputs& t, const Json&) { return tg::linear(t[0], t[1], Tensor{}); });
}

TEST_CASE("matmul multiplies an n x k matrix by a k x m one") {
  const Tensor a(Array{{1.f, 2.f, 3.f}, {4.f, 5.f, 6.f}});
  const Tensor b(Array{{1.f, 0.f}, {0.f, 1.f}, {1.f, 1.f}});
  CHECK(tg::matmul(a, b).value() == Array{{4.f, 5.f}, {10.f, 11.f}});
}

TEST_CASE("linear computes x w^T + b, and x w^T without a bias") {
  const Tensor a(Array{{1.f, 2.f, 3.f}, {4.f, 5.f, 6.f}});
  const Tensor w(Array{{1.f, 1.f, 1.f}});
  const Array with_bias = tg::linear(a, w, Tensor(Array(tg::Shape{1}, 0.5f))).value();
  const Array without_bias = tg::linear(a, w, Tensor{}).value();
  CHECK(with_bias.shape() == tg::Shape{2, 1});
  CHECK(with_bias(0, 0) == 6.5f);
  CHECK(with_bias(1, 0) == 15.5f);
  CHECK(without_bias(0, 0) == 6.f);
  CHECK(without_bias(1, 0) == 15.f);
}

TEST_CASE("matmul names both shapes when inner dimensions differ") {
  CHECK_THROWS_WITH_AS(tg::matmul(zeros_leaf({64, 400}), zeros_leaf({256, 120})),
                       "matmul: inner dimensions differ: [64, 400] x [256, 120]", tg::Error);
  CHECK_THROWS_WITH_AS(tg::matmul(zeros_leaf({2, 3, 4}), zeros_leaf({4, 5})),
                       doctest::Contains("[2, 3, 4] x [4, 5]"), tg::Error);
}

TEST_CASE("linear names the expected input, weight and bias shapes") {
  CHECK_THROWS_WITH_AS(tg::linear(zeros_leaf({64, 256}), zeros_leaf({120, 400}), zeros_leaf({120})),
                       "linear: expected input [N, 400] for weight [120, 400], got [64, 256]", tg::Error);
  CHECK_THROWS_WITH_AS(tg::linear(zeros_leaf({64, 400}), zeros_leaf({120, 400}), zeros_leaf({84})),
                       "linear: expected bias [120] for weight [120, 400], got [84]", tg::Error);
}
