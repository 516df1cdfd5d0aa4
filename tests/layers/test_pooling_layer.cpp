// The MaxPool2D layer (layers/pooling.hpp): MaxPool2D(k) is tg::max_pool2d with a k x k window and stride k.
#include <doctest/doctest.h>

#include "tapegrad.hpp"
#include "test_util.hpp"

using tg::Array;
using tg::Tensor;

TEST_CASE("MaxPool2D(k) pools k x k windows with stride k, as PyTorch's nn.MaxPool2d(k)") {
  const test_util::ClearTapeOnExit clear_tape;
  const Tensor x = test_util::param({2, 3, 8, 6}, 1);
  tg::MaxPool2D pool(2);
  const Tensor y = pool(x);
  CHECK(y.shape() == tg::Shape{2, 3, 4, 3});
  CHECK(y.value() == tg::max_pool2d(x, {.kernel = {2, 2}, .stride = {2, 2}}).value());
  CHECK(pool.parameters().empty());
}
