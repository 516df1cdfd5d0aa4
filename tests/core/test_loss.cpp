// Softmax family and losses (core/ops/loss.hpp): log_softmax, softmax, cross_entropy, mse_loss. Gradchecks,
// PyTorch fixtures, errors, behaviour.
#include <doctest/doctest.h>

#include <vector>

#include "fixture_runner.hpp"
#include "tapegrad.hpp"
#include "test_util.hpp"

using tg::Array;
using tg::Tensor;
using namespace test_util;

GRADCHECK_TEST_CASE("log_softmax", "along the last axis of 2-d and 3-d inputs") {
  check_gradients([](const Inputs& in) { return tg::log_softmax(in[0]); }, {param({4, 10}, 1, -2.f, 2.f)});
  check_gradients([](const Inputs& in) { return tg::log_softmax(in[0]); }, {param({2, 3, 5}, 2, -2.f, 2.f)});
}

GRADCHECK_TEST_CASE("softmax", "along the last axis") {
  check_gradients([](const Inputs& in) { return tg::softmax(in[0]); }, {param({4, 10}, 3, -2.f, 2.f)});
}

GRADCHECK_TEST_CASE("cross_entropy", "with repeated labels") {
  check_gradients(
      [](const Inputs& in) {
        return tg::cross_entropy(in[0], {1, 0, 9, 4, 4});
      },
      {param({5, 10}, 4, -2.f, 2.f)});
}

GRADCHECK_TEST_CASE("mse_loss", "for both pred and target") {
  check_gradients([](const Inputs& in) { return tg::mse_loss(in[0], in[1]); },
                  {param({3, 4}, 5), param({3, 4}, 6)});
}

PYTORCH_TEST_CASE("log_softmax", "along the last axis") {
  check_pytorch_cases(kCoreOps, op, [](const Inputs& t, const Json&) { return tg::log_softmax(t[0]); });
}

PYTORCH_TEST_CASE("softmax", "along the last axis") {
  check_pytorch_cases(kCoreOps, op, [](const Inputs& t, const Json&) { return tg::softmax(t[0]); });
}

PYTORCH_TEST_CASE("cross_entropy", "including logits of +-1000") {
  check_pytorch_cases(kCoreOps, op, [](const Inputs& t, const Json& c) {
    return tg::cross_entropy(t[0], c.at("labels").get<std::vector<int>>());
  });
}

PYTORCH_TEST_CASE("mse_loss", "with gradients for both pred and target") {
  check_pytorch_cases(kCoreOps, op, [](const Inputs& t, const Json&) { return tg::mse_loss(t[0], t[1]); });
}

TEST_CASE("softmax rows sum to one; log_softmax, cross_entropy and mse_loss give the textbook values") {
  const Tensor x(Array{{-1.f, 0.5f}, {2.f, -3.f}});
  CHECK(xt::sum(tg::softmax(x).value())() == doctest::Approx(2.0));
  CHECK(tg::log_softmax(x).value()(0, 1) == doctest::Approx(-0.201413));
  CHECK(tg::cross_entropy(Tensor(Array{{2.f, 0.f}, {0.f, 2.f}}), {0, 1}).item() == doctest::Approx(0.126928));
  CHECK(tg::mse_loss(x, Tensor(xt::zeros<float>({2, 2}))).item() ==
        doctest::Approx((1 + 0.25 + 4 + 9) / 4.0));
}

TEST_CASE("cross_entropy checks logits shape, label count and label range") {
  CHECK_THROWS_WITH_AS(tg::cross_entropy(zeros_leaf({3, 10}), {1, 2}),
                       "cross_entropy: expected 3 labels for logits [3, 10], got 2", tg::Error);
  CHECK_THROWS_WITH_AS(tg::cross_entropy(zeros_leaf({2, 10}), {1, 10}),
                       "cross_entropy: label 1 is 10, expected a class in [0, 10)", tg::Error);
  CHECK_THROWS_WITH_AS(tg::cross_entropy(zeros_leaf({2, 10}), {-1, 0}), doctest::Contains("label 0 is -1"),
                       tg::Error);
  CHECK_THROWS_WITH_AS(tg::cross_entropy(zeros_leaf({10}), {1}), doctest::Contains("expected logits [N, C]"),
                       tg::Error);
}

TEST_CASE("mse_loss requires equal shapes") {
  CHECK_THROWS_WITH_AS(tg::mse_loss(zeros_leaf({3, 4}), zeros_leaf({4, 3})),
                       "mse_loss: pred and target shapes differ: [3, 4] vs [4, 3]", tg::Error);
}

TEST_CASE("softmax and log_softmax need a non-empty last axis") {
  CHECK_THROWS_AS(tg::softmax(Tensor(Array(1.f))), tg::Error);
  CHECK_THROWS_AS(tg::log_softmax(zeros_leaf({2, 0})), tg::Error);
}
