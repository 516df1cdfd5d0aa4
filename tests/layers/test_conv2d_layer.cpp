// The Conv2D layer (layers/conv2d.hpp): weight OIHW, and shape errors naming the layer and its channels.
#include <doctest/doctest.h>

#include "tapegrad.hpp"
#include "test_util.hpp"

using tg::Array;
using tg::Tensor;

TEST_CASE("Conv2D(in, out, k) holds an OIHW weight and a bias per output channel") {
  tg::Conv2D conv(16, 32, 5);
  CHECK(conv.weight.shape() == tg::Shape{32, 16, 5, 5});
  CHECK(conv.bias.shape() == tg::Shape{32});
}

TEST_CASE("a Conv2D layer given the wrong number of channels names itself and the expected input") {
  const test_util::ClearTapeOnExit clear_tape;
  tg::Sequential model(tg::Conv2D(1, 6, 5, {.padding = {2, 2}}), tg::ReLU());
  CHECK_THROWS_WITH_AS(
      model(Tensor(xt::zeros<float>({2, 3, 28, 28}))),
      "layer 0 Conv2D(1 -> 6, kernel 5x5, padding 2x2): expected input [N, 1, H, W], got [2, 3, 28, 28]",
      tg::Error);
}
