// Tensor (core/autograd/tensor.hpp): a handle to a value, a gradient and a flag; item, detach, undefined
// tensors.
#include <doctest/doctest.h>

#include "tapegrad.hpp"
#include "test_util.hpp"

using tg::Array;
using tg::Tensor;

TEST_CASE("grad() is zeros of the value's shape before any backward") {
  Tensor x(Array{{1.f, 2.f, 3.f}}, true);
  CHECK(x.grad().shape() == x.shape());
  CHECK(x.grad() == Array{{0.f, 0.f, 0.f}});
}

TEST_CASE("item works on 1-element tensors only") {
  CHECK(Tensor(Array(tg::Shape{1, 1}, 2.5f)).item() == 2.5f);
  CHECK_THROWS_WITH_AS(Tensor(Array{1.f, 2.f}).item(), doctest::Contains("[2]"), tg::Error);
  CHECK_THROWS_AS(Tensor().item(), tg::Error);
}

TEST_CASE("detach gives the same value, no grad, and is not recorded") {
  const test_util::ClearTapeOnExit clear_tape;
  Tensor x(Array{1.f, 2.f}, true);
  Tensor d = (x * 3.f).detach();
  CHECK(d.value() == Array{3.f, 6.f});
  CHECK_FALSE(d.requires_grad());
  Tensor y = tg::sum(d * x);  // only x's path records
  y.backward();
  CHECK(x.grad() == Array{3.f, 6.f});
}

TEST_CASE("an undefined tensor is an error, not a crash") {
  Tensor none;
  CHECK_THROWS_WITH_AS(none.value(), doctest::Contains("undefined"), tg::Error);
  CHECK_THROWS_AS(none + Tensor(xt::zeros<float>({2}), true), tg::Error);
  CHECK_THROWS_AS(tg::relu(none), tg::Error);
}
