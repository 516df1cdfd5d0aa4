// Parameter-free layers (layers/activations.hpp): activations, Flatten, Dropout in train and eval mode.
#include <doctest/doctest.h>

#include <cmath>
#include <sstream>

#include "tapegrad.hpp"
#include "test_util.hpp"

using tg::Array;
using tg::Tensor;

TEST_CASE("Dropout scales kept activations in training and is the identity in eval") {
  const test_util::ScopedSeed seed(3);
  tg::Sequential model(tg::Dropout(0.5f));
  Tensor x(xt::ones<float>({1000}), true);
  const Array y = model(x).value();
  std::size_t zeros = 0;
  for (float v : y) {
    CHECK((v == 0.f || v == 2.f));
    zeros += v == 0.f;
  }
  CHECK(zeros > 400);
  CHECK(zeros < 600);
  model.eval();
  CHECK(model(x).value() == x.value());
  CHECK_THROWS_AS(tg::Dropout(1.f), tg::Error);
  tg::clear_tape();
}

TEST_CASE("activation modules compute their functions") {
  Tensor x(Array{{-2.f, 0.5f}});
  CHECK(tg::ReLU()(x).value() == Array{{0.f, 0.5f}});
  CHECK(tg::LeakyReLU(0.1f)(x).value()(0, 0) == doctest::Approx(-0.2f));
  CHECK(tg::Sigmoid()(x).value()(0, 1) == doctest::Approx(0.622459));
  CHECK(tg::Tanh()(x).value()(0, 0) == doctest::Approx(-0.964028));
  CHECK(tg::Softmax()(x).value()(0, 1) == doctest::Approx(0.924142));
  CHECK(tg::LogSoftmax()(x).value()(0, 1) == doctest::Approx(-0.078889));
  CHECK(tg::Flatten()(Tensor(xt::zeros<float>({2, 3, 4}))).shape() == tg::Shape{2, 12});
}
