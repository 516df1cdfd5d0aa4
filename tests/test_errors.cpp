// Shape errors: every op throws tg::Error naming itself and both shapes, before touching memory.
#include <doctest/doctest.h>

#include "tapegrad.hpp"

using tg::Array;
using tg::Tensor;

namespace {
Tensor zeros(const tg::Shape& shape) { return Tensor(xt::zeros<float>(shape), true); }
}  // namespace

TEST_CASE("matmul names both shapes when inner dimensions differ") {
  CHECK_THROWS_WITH_AS(tg::matmul(zeros({64, 400}), zeros({256, 120})),
                       "matmul: inner dimensions differ: [64, 400] x [256, 120]", tg::Error);
  CHECK_THROWS_WITH_AS(tg::matmul(zeros({2, 3, 4}), zeros({4, 5})), doctest::Contains("[2, 3, 4] x [4, 5]"),
                       tg::Error);
}

TEST_CASE("elementwise ops name the shapes that do not broadcast") {
  CHECK_THROWS_WITH_AS(zeros({2, 3}) + zeros({4}), "add: shapes cannot be broadcast together: [2, 3] and [4]",
                       tg::Error);
  CHECK_THROWS_WITH_AS(zeros({2, 3}) - zeros({3, 2}), doctest::Contains("sub:"), tg::Error);
  CHECK_THROWS_WITH_AS(zeros({5}) * zeros({4}), doctest::Contains("mul:"), tg::Error);
  CHECK_THROWS_WITH_AS(zeros({5}) / zeros({2, 4}), doctest::Contains("div:"), tg::Error);
}

TEST_CASE("linear names the expected input, weight and bias shapes") {
  CHECK_THROWS_WITH_AS(tg::linear(zeros({64, 256}), zeros({120, 400}), zeros({120})),
                       "linear: expected input [N, 400] for weight [120, 400], got [64, 256]", tg::Error);
  CHECK_THROWS_WITH_AS(tg::linear(zeros({64, 400}), zeros({120, 400}), zeros({84})),
                       "linear: expected bias [120] for weight [120, 400], got [84]", tg::Error);
}

TEST_CASE("reshape and flatten reject impossible shapes") {
  CHECK_THROWS_WITH_AS(tg::reshape(zeros({2, 3}), {-1, 4}),
                       "reshape: cannot reshape [2, 3] (6 elements) into [-1, 4]", tg::Error);
  CHECK_THROWS_WITH_AS(tg::reshape(zeros({2, 3}), {-1, -1}), doctest::Contains("only one -1"), tg::Error);
  CHECK_THROWS_WITH_AS(tg::reshape(zeros({2, 3}), {7}), doctest::Contains("into [7]"), tg::Error);
  CHECK_THROWS_AS(tg::flatten(Tensor(Array(1.f))), tg::Error);
}

TEST_CASE("cross_entropy checks logits shape, label count and label range") {
  CHECK_THROWS_WITH_AS(tg::cross_entropy(zeros({3, 10}), {1, 2}),
                       "cross_entropy: expected 3 labels for logits [3, 10], got 2", tg::Error);
  CHECK_THROWS_WITH_AS(tg::cross_entropy(zeros({2, 10}), {1, 10}),
                       "cross_entropy: label 1 is 10, expected a class in [0, 10)", tg::Error);
  CHECK_THROWS_WITH_AS(tg::cross_entropy(zeros({2, 10}), {-1, 0}), doctest::Contains("label 0 is -1"), tg::Error);
  CHECK_THROWS_WITH_AS(tg::cross_entropy(zeros({10}), {1}), doctest::Contains("expected logits [N, C]"), tg::Error);
}

TEST_CASE("mse_loss requires equal shapes; softmax needs an axis") {
  CHECK_THROWS_WITH_AS(tg::mse_loss(zeros({3, 4}), zeros({4, 3})),
                       "mse_loss: pred and target shapes differ: [3, 4] vs [4, 3]", tg::Error);
  CHECK_THROWS_AS(tg::softmax(Tensor(Array(1.f))), tg::Error);
  CHECK_THROWS_AS(tg::log_softmax(zeros({2, 0})), tg::Error);
}

TEST_CASE("an undefined tensor is an error, not a crash") {
  Tensor none;
  CHECK_THROWS_WITH_AS(none.value(), doctest::Contains("undefined"), tg::Error);
  CHECK_THROWS_AS(none + zeros({2}), tg::Error);
  CHECK_THROWS_AS(tg::relu(none), tg::Error);
}
