// A finite-difference gradcheck for every op, on shapes that exercise broadcasting.
#include <doctest/doctest.h>

#include "tapegrad.hpp"
#include "test_util.hpp"

using tg::Array;
using tg::Tensor;
using Inputs = std::vector<Tensor>;
using test_util::param;
constexpr auto check = test_util::check_gradients;

namespace {


// Away from zero, for relu's kink and the denominators of div.
Tensor param_away_from_zero(const tg::Shape& shape, std::uint64_t seed) {
  tg::Generator gen(seed);
  Array v = tg::rand_uniform(shape, 0.3f, 1.5f, gen);
  for (float& x : v) x = gen.uniform() < 0.5f ? -x : x;
  return Tensor(std::move(v), true);
}


}  // namespace

TEST_CASE("gradcheck: add, sub, mul, div with broadcasting") {
  const std::vector<std::pair<tg::Shape, tg::Shape>> pairs = {
      {{2, 3}, {2, 3}}, {{2, 3, 4}, {3, 1}}, {{4}, {2, 1, 4}}, {{2, 1}, {1, 3}}};
  for (const auto& [sa, sb] : pairs) {
    INFO(tg::shape_str(sa), " with ", tg::shape_str(sb));
    check([](const Inputs& in) { return in[0] + in[1]; }, {param(sa, 1), param(sb, 2)});
    check([](const Inputs& in) { return in[0] - in[1]; }, {param(sa, 3), param(sb, 4)});
    check([](const Inputs& in) { return in[0] * in[1]; }, {param(sa, 5), param(sb, 6)});
    check([](const Inputs& in) { return in[0] / in[1]; }, {param(sa, 7), param_away_from_zero(sb, 8)});
  }
}

TEST_CASE("gradcheck: ops with a float on either side, and unary minus") {
  check([](const Inputs& in) { return in[0] + 2.5f; }, {param({2, 3}, 1)});
  check([](const Inputs& in) { return 2.5f + in[0]; }, {param({2, 3}, 2)});
  check([](const Inputs& in) { return in[0] - 2.5f; }, {param({2, 3}, 3)});
  check([](const Inputs& in) { return 2.5f - in[0]; }, {param({2, 3}, 4)});
  check([](const Inputs& in) { return in[0] * -1.5f; }, {param({2, 3}, 5)});
  check([](const Inputs& in) { return -1.5f * in[0]; }, {param({2, 3}, 6)});
  check([](const Inputs& in) { return in[0] / 4.f; }, {param({2, 3}, 7)});
  check([](const Inputs& in) { return 4.f / in[0]; }, {param_away_from_zero({2, 3}, 8)});
  check([](const Inputs& in) { return -in[0]; }, {param({2, 3}, 9)});
}

TEST_CASE("gradcheck: relu, sigmoid, tanh, exp, log") {
  check([](const Inputs& in) { return tg::relu(in[0]); }, {param_away_from_zero({3, 5}, 1)});
  check([](const Inputs& in) { return tg::sigmoid(in[0]); }, {param({3, 5}, 2, -3.f, 3.f)});
  check([](const Inputs& in) { return tg::tanh(in[0]); }, {param({3, 5}, 3, -2.f, 2.f)});
  check([](const Inputs& in) { return tg::exp(in[0]); }, {param({3, 5}, 4)});
  check([](const Inputs& in) { return tg::log(in[0]); }, {param({3, 5}, 5, 0.5f, 3.f)});
}

TEST_CASE("gradcheck: sum, mean, reshape, flatten") {
  check([](const Inputs& in) { return tg::sum(in[0]); }, {param({2, 3, 4}, 1)});
  check([](const Inputs& in) { return tg::mean(in[0]); }, {param({2, 3, 4}, 2)});
  const Tensor weights = param({6, 4}, 5);  // fixed, so the reshaped layout matters
  check([weights](const Inputs& in) { return tg::reshape(in[0], {-1, 4}) * weights; }, {param({2, 3, 4}, 3)});
  check([](const Inputs& in) { return tg::flatten(in[0]); }, {param({2, 3, 2, 2}, 4)});
}

TEST_CASE("gradcheck: matmul and linear, with and without bias") {
  check([](const Inputs& in) { return tg::matmul(in[0], in[1]); }, {param({3, 4}, 1), param({4, 5}, 2)});
  check([](const Inputs& in) { return tg::linear(in[0], in[1], in[2]); },
        {param({4, 6}, 3), param({3, 6}, 4), param({3}, 5)});
  check([](const Inputs& in) { return tg::linear(in[0], in[1], Tensor{}); }, {param({4, 6}, 6), param({3, 6}, 7)});
}

TEST_CASE("gradcheck: log_softmax, softmax, cross_entropy, mse_loss") {
  check([](const Inputs& in) { return tg::log_softmax(in[0]); }, {param({4, 10}, 1, -2.f, 2.f)});
  check([](const Inputs& in) { return tg::log_softmax(in[0]); }, {param({2, 3, 5}, 2, -2.f, 2.f)});
  check([](const Inputs& in) { return tg::softmax(in[0]); }, {param({4, 10}, 3, -2.f, 2.f)});
  check([](const Inputs& in) { return tg::cross_entropy(in[0], {1, 0, 9, 4, 4}); }, {param({5, 10}, 4, -2.f, 2.f)});
  check([](const Inputs& in) { return tg::mse_loss(in[0], in[1]); }, {param({3, 4}, 5), param({3, 4}, 6)});
}

TEST_CASE("gradcheck of a composite function through several ops") {
  check([](const Inputs& in) { return tg::cross_entropy(tg::linear(tg::tanh(in[0]), in[1], in[2]), {0, 2, 1}); },
        {param({3, 5}, 1), param({4, 5}, 2), param({4}, 3)});
}

TEST_CASE("gradcheck catches a wrong backward") {
  Tensor x = param({2, 3}, 1);
  auto wrong_square = [](const Inputs& in) {
    const Tensor& t = in[0];
    return tg::make_op("wrong_square", Array(t.value() * t.value()), {t},
                       [t](const Array& dout) { return std::vector<Array>{Array(3.f * t.value() * dout)}; });
  };
  const tg::GradcheckResult r = tg::gradcheck(wrong_square, {x});
  CHECK_FALSE(r.ok);
  CHECK(r.max_abs_error > 0.1f);
  CHECK(r.report.find("FAIL") != std::string::npos);
}

TEST_CASE("gradcheck restores the inputs' values and gradients") {
  Tensor x = param({2, 2}, 1);
  const Array before = x.value();
  tg::sum(x * 5.f).backward();
  tg::gradcheck([](const Inputs& in) { return tg::sum(in[0] * in[0]); }, {x});
  CHECK(x.value() == before);
  CHECK(x.grad() == xt::full_like(before, 5.f));
}

TEST_CASE("gradcheck rejects inputs without requires_grad") {
  CHECK_THROWS_AS(tg::gradcheck([](const Inputs& in) { return tg::sum(in[0]); }, {Tensor(Array(tg::Shape{1}, 1.f))}), tg::Error);
}
