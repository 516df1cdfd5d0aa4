// Grad mode (core/autograd/tape.hpp): NoGradGuard, and inputs that need no gradient.
#include <doctest/doctest.h>

#include "tapegrad.hpp"
#include "test_util.hpp"

using tg::Array;
using tg::Tensor;

TEST_CASE("an input with requires_grad=false gets no gradient and costs no backward work") {
  Tensor x(Array{1.f, 2.f}, true);
  Tensor c(Array{5.f, 7.f}, false);
  tg::sum(x * c).backward();
  CHECK(x.grad() == Array{5.f, 7.f});
  CHECK(c.node()->grad.shape() != c.shape());  // never allocated

  int backward_calls = 0;
  auto counted = [&backward_calls](const Tensor& t) {
    return tg::make_op("counted", Array(t.value() * 2.f), {t}, [&backward_calls](const Array& dout) {
      ++backward_calls;
      return std::vector<Array>{Array(dout * 2.f)};
    });
  };
  Tensor constant(Array{1.f, 2.f});
  Tensor out = counted(constant);
  CHECK_FALSE(out.requires_grad());
  CHECK(tg::tape_size() == 0);
  tg::sum(counted(x) + counted(constant)).backward();
  CHECK(backward_calls == 1);
}

TEST_CASE("nothing is recorded under NoGradGuard, and the mode is restored after it") {
  Tensor x(Array{1.f, 2.f}, true);
  CHECK(tg::grad_enabled());
  {
    tg::NoGradGuard no_grad;
    CHECK_FALSE(tg::grad_enabled());
    Tensor y = tg::sum(x * x);
    CHECK_FALSE(y.requires_grad());
    CHECK(tg::tape_size() == 0);
    CHECK_THROWS_AS(y.backward(), tg::Error);
  }
  CHECK(tg::grad_enabled());
}
