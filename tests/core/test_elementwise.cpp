// Elementwise ops (core/ops/elementwise.hpp): + - * / with numpy broadcasting, the float-scalar variants,
// unary minus, relu, sigmoid, tanh, exp, log, leaky_relu, relu6, dropout. Gradchecks, PyTorch fixtures,
// errors, behaviour.
#include <doctest/doctest.h>

#include <cmath>
#include <utility>
#include <vector>

#include "fixture_runner.hpp"
#include "tapegrad.hpp"
#include "test_util.hpp"

using tg::Array;
using tg::Tensor;
using namespace test_util;

namespace {

// Shape pairs that exercise broadcasting: equal, trailing, leading, both sides.
const std::vector<std::pair<tg::Shape, tg::Shape>>& broadcast_pairs() {
  static const std::vector<std::pair<tg::Shape, tg::Shape>> pairs = {
      {{2, 3}, {2, 3}}, {{2, 3, 4}, {3, 1}}, {{4}, {2, 1, 4}}, {{2, 1}, {1, 3}}};
  return pairs;
}

float scalar_of(const Json& c) { return c.at("scalar").get<float>(); }

}  // namespace

// ---- add, sub, mul, div ---------------------------------------------------------------------------------

GRADCHECK_TEST_CASE("add", "with numpy broadcasting") {
  for (const auto& [sa, sb] : broadcast_pairs()) {
    INFO(tg::shape_str(sa), " with ", tg::shape_str(sb));
    check_gradients([](const Inputs& in) { return in[0] + in[1]; }, {param(sa, 1), param(sb, 2)});
  }
}

GRADCHECK_TEST_CASE("sub", "with numpy broadcasting") {
  for (const auto& [sa, sb] : broadcast_pairs()) {
    INFO(tg::shape_str(sa), " with ", tg::shape_str(sb));
    check_gradients([](const Inputs& in) { return in[0] - in[1]; }, {param(sa, 3), param(sb, 4)});
  }
}

GRADCHECK_TEST_CASE("mul", "with numpy broadcasting") {
  for (const auto& [sa, sb] : broadcast_pairs()) {
    INFO(tg::shape_str(sa), " with ", tg::shape_str(sb));
    check_gradients([](const Inputs& in) { return in[0] * in[1]; }, {param(sa, 5), param(sb, 6)});
  }
}

GRADCHECK_TEST_CASE("div", "with numpy broadcasting, denominators away from zero") {
  for (const auto& [sa, sb] : broadcast_pairs()) {
    INFO(tg::shape_str(sa), " with ", tg::shape_str(sb));
    check_gradients([](const Inputs& in) { return in[0] / in[1]; },
                    {param(sa, 7), param_away_from_zero(sb, 8)});
  }
}

PYTORCH_TEST_CASE("add", "with broadcasting") {
  check_pytorch_cases(kCoreOps, op, [](const Inputs& t, const Json&) { return t[0] + t[1]; });
}

PYTORCH_TEST_CASE("sub", "with broadcasting") {
  check_pytorch_cases(kCoreOps, op, [](const Inputs& t, const Json&) { return t[0] - t[1]; });
}

PYTORCH_TEST_CASE("mul", "with broadcasting") {
  check_pytorch_cases(kCoreOps, op, [](const Inputs& t, const Json&) { return t[0] * t[1]; });
}

PYTORCH_TEST_CASE("div", "with broadcasting") {
  check_pytorch_cases(kCoreOps, op, [](const Inputs& t, const Json&) { return t[0] / t[1]; });
}

TEST_CASE("add, sub, mul and div name themselves and the shapes that do not broadcast") {
  CHECK_THROWS_WITH_AS(zeros_leaf({2, 3}) + zeros_leaf({4}),
                       "add: shapes cannot be broadcast together: [2, 3] and [4]", tg::Error);
  CHECK_THROWS_WITH_AS(zeros_leaf({2, 3}) - zeros_leaf({3, 2}), doctest::Contains("sub:"), tg::Error);
  CHECK_THROWS_WITH_AS(zeros_leaf({5}) * zeros_leaf({4}), doctest::Contains("mul:"), tg::Error);
  CHECK_THROWS_WITH_AS(zeros_leaf({5}) / zeros_leaf({2, 4}), doctest::Contains("div:"), tg::Error);
}

// ---- a float on either side, and unary minus
// ---------------------------------------------------------------

GRADCHECK_TEST_CASE("add_scalar", "with the float on either side") {
  check_gradients([](const Inputs& in) { return in[0] + 2.5f; }, {param({2, 3}, 1)});
  check_gradients([](const Inputs& in) { return 2.5f + in[0]; }, {param({2, 3}, 2)});
}

GRADCHECK_TEST_CASE("sub_scalar", "tensor minus float") {
  check_gradients([](const Inputs& in) { return in[0] - 2.5f; }, {param({2, 3}, 3)});
}

GRADCHECK_TEST_CASE("rsub_scalar", "float minus tensor") {
  check_gradients([](const Inputs& in) { return 2.5f - in[0]; }, {param({2, 3}, 4)});
}

GRADCHECK_TEST_CASE("mul_scalar", "with the float on either side") {
  check_gradients([](const Inputs& in) { return in[0] * -1.5f; }, {param({2, 3}, 5)});
  check_gradients([](const Inputs& in) { return -1.5f * in[0]; }, {param({2, 3}, 6)});
}

GRADCHECK_TEST_CASE("div_scalar", "tensor over float") {
  check_gradients([](const Inputs& in) { return in[0] / 4.f; }, {param({2, 3}, 7)});
}

GRADCHECK_TEST_CASE("rdiv_scalar", "float over tensor, away from zero") {
  check_gradients([](const Inputs& in) { return 4.f / in[0]; }, {param_away_from_zero({2, 3}, 8)});
}

GRADCHECK_TEST_CASE("neg", "unary minus") {
  check_gradients([](const Inputs& in) { return -in[0]; }, {param({2, 3}, 9)});
}

PYTORCH_TEST_CASE("add_scalar", "tensor + float") {
  check_pytorch_cases(kCoreOps, op, [](const Inputs& t, const Json& c) { return t[0] + scalar_of(c); });
}

PYTORCH_TEST_CASE("sub_scalar", "tensor - float") {
  check_pytorch_cases(kCoreOps, op, [](const Inputs& t, const Json& c) { return t[0] - scalar_of(c); });
}

PYTORCH_TEST_CASE("rsub_scalar", "float - tensor") {
  check_pytorch_cases(kCoreOps, op, [](const Inputs& t, const Json& c) { return scalar_of(c) - t[0]; });
}

PYTORCH_TEST_CASE("mul_scalar", "tensor * float") {
  check_pytorch_cases(kCoreOps, op, [](const Inputs& t, const Json& c) { return t[0] * scalar_of(c); });
}

PYTORCH_TEST_CASE("div_scalar", "tensor / float") {
  check_pytorch_cases(kCoreOps, op, [](const Inputs& t, const Json& c) { return t[0] / scalar_of(c); });
}

PYTORCH_TEST_CASE("rdiv_scalar", "float / tensor") {
  check_pytorch_cases(kCoreOps, op, [](const Inputs& t, const Json& c) { return scalar_of(c) / t[0]; });
}

PYTORCH_TEST_CASE("neg", "unary minus") {
  check_pytorch_cases(kCoreOps, op, [](const Inputs& t, const Json&) { return -t[0]; });
}

TEST_CASE("a float on the left of - and / gives float - x and float / x") {
  const Tensor x(Array{{-1.f, 0.5f}, {2.f, -3.f}});
  CHECK((2.f - x).value()(0, 0) == 3.f);
  CHECK((-x).value()(1, 1) == 3.f);
  CHECK((x / 2.f).value()(1, 0) == 1.f);
  CHECK((2.f / x).value()(1, 0) == 1.f);
}

// ---- pointwise nonlinearities ----------------------------------------------------------------------------

GRADCHECK_TEST_CASE("relu", "on values away from the kink at 0") {
  check_gradients([](const Inputs& in) { return tg::relu(in[0]); }, {param_away_from_zero({3, 5}, 1)});
}

GRADCHECK_TEST_CASE("sigmoid", "on values from -3 to 3") {
  check_gradients([](const Inputs& in) { return tg::sigmoid(in[0]); }, {param({3, 5}, 2, -3.f, 3.f)});
}

GRADCHECK_TEST_CASE("tanh", "on values from -2 to 2") {
  check_gradients([](const Inputs& in) { return tg::tanh(in[0]); }, {param({3, 5}, 3, -2.f, 2.f)});
}

GRADCHECK_TEST_CASE("exp", "on values from -1 to 1") {
  check_gradients([](const Inputs& in) { return tg::exp(in[0]); }, {param({3, 5}, 4)});
}

GRADCHECK_TEST_CASE("log", "on values from 0.5 to 3") {
  check_gradients([](const Inputs& in) { return tg::log(in[0]); }, {param({3, 5}, 5, 0.5f, 3.f)});
}

GRADCHECK_TEST_CASE("leaky_relu", "with slope 0.1 on values of both signs") {
  tg::Generator gen(1);
  Array v = tg::rand_uniform({3, 4}, 0.2f, 1.f, gen);
  for (std::size_t i = 0; i < v.size(); i += 2) v.data()[i] = -v.data()[i];
  check_gradients([](const Inputs& in) { return tg::leaky_relu(in[0], 0.1f); }, {Tensor(v, true)});
}

GRADCHECK_TEST_CASE("relu6", "on values below 0, between 0 and 6 and above 6, away from the kinks") {
  const Array v = {{-1.5f, -0.3f, 0.4f, 2.f, 3.7f}, {5.5f, 6.4f, 8.f, -4.f, 1.1f}};
  check_gradients([](const Inputs& in) { return tg::relu6(in[0]); }, {Tensor(v, true)});
}

TEST_CASE("relu6 clamps to [0, 6] and passes no gradient at or beyond the kinks (PyTorch's hardtanh rule)") {
  Tensor x(Array{-1.f, 0.f, 3.f, 6.f, 7.f}, true);
  const Tensor y = tg::relu6(x);
  CHECK(y.value() == Array{0.f, 0.f, 3.f, 6.f, 6.f});
  tg::sum(y * Tensor(Array{1.f, 2.f, 3.f, 4.f, 5.f})).backward();
  CHECK(x.grad() == Array{0.f, 0.f, 3.f, 0.f, 0.f});  // x == 0 and x == 6 get 0, as torch.nn.ReLU6
  CHECK(std::isnan(tg::relu6(Tensor(Array{NAN})).value()(0)));
}

PYTORCH_TEST_CASE("relu6", "F.relu6 on values of both signs and above 6, and exactly at the kinks") {
  check_pytorch_cases(kExtraOps, op, [](const Inputs& t, const Json&) { return tg::relu6(t[0]); });
}

GRADCHECK_TEST_CASE("dropout", "with a fixed mask (the same generator seed on every evaluation)") {
  tg::Generator gen(1);
  Array v = tg::rand_uniform({3, 4}, 0.2f, 1.f, gen);
  for (std::size_t i = 0; i < v.size(); i += 2) v.data()[i] = -v.data()[i];
  check_gradients(
      [](const Inputs& in) {
        tg::Generator mask_gen(9);  // the same mask on every evaluation
        return tg::dropout(in[0], 0.3f, mask_gen);
      },
      {Tensor(v, true)});
}

PYTORCH_TEST_CASE("relu", "on values of both signs") {
  check_pytorch_cases(kCoreOps, op, [](const Inputs& t, const Json&) { return tg::relu(t[0]); });
}

PYTORCH_TEST_CASE("sigmoid", "on random values") {
  check_pytorch_cases(kCoreOps, op, [](const Inputs& t, const Json&) { return tg::sigmoid(t[0]); });
}

PYTORCH_TEST_CASE("tanh", "on random values") {
  check_pytorch_cases(kCoreOps, op, [](const Inputs& t, const Json&) { return tg::tanh(t[0]); });
}

PYTORCH_TEST_CASE("exp", "on random values") {
  check_pytorch_cases(kCoreOps, op, [](const Inputs& t, const Json&) { return tg::exp(t[0]); });
}

PYTORCH_TEST_CASE("log", "on positive values") {
  check_pytorch_cases(kCoreOps, op, [](const Inputs& t, const Json&) { return tg::log(t[0]); });
}

PYTORCH_TEST_CASE("leaky_relu", "F.leaky_relu with the default and a custom negative slope") {
  check_pytorch_cases(kExtraOps, op, [](const Inputs& t, const Json& c) {
    return tg::leaky_relu(t[0], c.at("slope").get<float>());
  });
}

// PyTorch's dropout mask comes from its own generator, so only p = 0 (in training mode: the identity, all
// gradients passed through) compares element by element; the scaling rule is checked below.
PYTORCH_TEST_CASE("dropout", "F.dropout(p=0, training=True) is the identity, forward and backward") {
  check_pytorch_cases(kExtraOps, op, [](const Inputs& t, const Json& c) {
    tg::Generator gen(1);
    return tg::dropout(t[0], c.at("p").get<float>(), gen);
  });
}

TEST_CASE(
    "dropout zeroes about p of the elements, scales the rest by 1 / (1 - p), and routes gradients by the "
    "same mask") {
  tg::Generator gen(5);
  Tensor x(xt::ones<float>({2000}), true);
  const Tensor y = tg::dropout(x, 0.25f, gen);
  tg::sum(y).backward();
  std::size_t zeroed = 0;
  for (std::size_t i = 0; i < y.value().size(); ++i) {
    const float v = y.value()(i);
    CHECK((v == 0.f || v == doctest::Approx(1.f / 0.75f)));
    CHECK(x.grad()(i) == v);  // d(sum)/dx = mask / (1 - p) = the output for an input of ones
    zeroed += v == 0.f;
  }
  CHECK(zeroed > 400);
  CHECK(zeroed < 600);
}

TEST_CASE("dropout with the same generator seed draws the same mask") {
  const Tensor x(xt::ones<float>({100}));
  tg::Generator a(11), b(11);
  CHECK(tg::dropout(x, 0.5f, a).value() == tg::dropout(x, 0.5f, b).value());
}
