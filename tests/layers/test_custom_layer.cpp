// The custom-layer example (apps/custom_layer.hpp): a layer composed from ops (PReLU) and one with a
// primitive op of its own (SiLU) pass gradcheck and train inside a Sequential.
#include <doctest/doctest.h>

#include <vector>

#include "custom_layer.hpp"
#include "tapegrad.hpp"
#include "test_util.hpp"

using namespace test_util;

TEST_CASE("the custom-layer example's layers train inside a Sequential, loss going down") {
  const ScopedSeed seed(0);
  tg::Tensor probe(tg::randn({3, 4}), true);
  const auto check =
      tg::gradcheck([](const std::vector<tg::Tensor>& in) { return example::silu(in[0]); }, {probe});
  INFO(check.report);
  CHECK(check.ok);
  tg::Array points = tg::rand_uniform({128, 2}, -1.5f, 1.5f);
  std::vector<int> labels(128);
  for (std::size_t i = 0; i < 128; ++i)
    labels[i] = points(i, 0) * points(i, 0) + points(i, 1) * points(i, 1) < 1.f;
  tg::Sequential model(tg::Linear(2, 16), example::PReLU(), tg::Linear(16, 16), example::SiLU(),
                       tg::Linear(16, 2));
  CHECK(model.named_parameters()[2].first == "1.weight");  // PReLU's slope is a registered parameter
  tg::SGD opt(model.parameters(), {.lr = 0.1f, .momentum = 0.9f});
  const float slope_before = model.at<example::PReLU>(1).slope.value()(0);
  float first = 0.f, last = 0.f;
  for (int step = 0; step < 100; ++step) {
    tg::Tensor loss = tg::cross_entropy(model(tg::Tensor(points)), labels);
    if (step == 0) first = loss.item();
    last = loss.item();
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  CHECK(last < 0.5f * first);
  CHECK(model.at<example::PReLU>(1).slope.value()(0) != slope_before);
}
