// gradcheck (core/autograd/gradcheck.hpp): finite differences against backward, on a composite function; it
// catches a wrong backward, leaves its inputs as they were, and refuses inputs that need no gradient.
#include <doctest/doctest.h>

#include <vector>

#include "tapegrad.hpp"
#include "test_util.hpp"

using test_util::Inputs;
using test_util::param;
using tg::Array;
using tg::Tensor;

TEST_CASE("gradcheck of a composite function through several ops") {
  test_util::check_gradients(
      [](const Inputs& in) {
        return tg::cross_entropy(tg::linear(tg::tanh(in[0]), in[1], in[2]), {0, 2, 1});
      },
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
  CHECK_THROWS_AS(
      tg::gradcheck([](const Inputs& in) { return tg::sum(in[0]); }, {Tensor(Array(tg::Shape{1}, 1.f))}),
      tg::Error);
}
