// The Linear layer (layers/linear.hpp): weight [out, in] and bias [out], its description, and shape errors
// that name the layer and its position in a Sequential.
#include <doctest/doctest.h>

#include "tapegrad.hpp"
#include "test_util.hpp"

using tg::Array;
using tg::Tensor;

TEST_CASE(
    "Linear(in, out) holds an out x in weight and an out bias and describes itself as Linear(in -> out)") {
  tg::Linear fc(4, 3);
  CHECK(fc.weight.shape() == tg::Shape{3, 4});
  CHECK(fc.bias.shape() == tg::Shape{3});
  CHECK(fc.describe() == "Linear(4 -> 3)");
}

TEST_CASE("a Linear layer's shape error names the layer, its position and the shapes") {
  const test_util::ClearTapeOnExit clear_tape;
  tg::Sequential model(tg::Flatten(), tg::Linear(256, 400), tg::ReLU(), tg::Linear(300, 120));
  CHECK_THROWS_WITH_AS(model(Tensor(xt::zeros<float>({64, 256}))),
                       "layer 3 Linear(300 -> 120): expected input [N, 300], got [64, 400]", tg::Error);
}

TEST_CASE("a Linear layer after convolutions reports the flattened size it was given") {
  const test_util::ClearTapeOnExit clear_tape;
  tg::Sequential lenet(tg::Conv2D(1, 6, 5, {.padding = {2, 2}}), tg::ReLU(), tg::MaxPool2D(2),
                       tg::Conv2D(6, 16, 5), tg::ReLU(), tg::MaxPool2D(2), tg::Flatten(),
                       tg::Linear(400, 120), tg::ReLU(), tg::Linear(120, 84), tg::ReLU(), tg::Linear(84, 10));
  CHECK_THROWS_WITH_AS(lenet(Tensor(xt::zeros<float>({2, 1, 32, 32}))),
                       doctest::Contains("layer 7 Linear(400 -> 120): expected input [N, 400], got [2, 576]"),
                       tg::Error);
}
