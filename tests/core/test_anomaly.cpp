// Anomaly detection (core/autograd/tape.hpp, set_detect_anomaly): the first NaN or Inf is named by op, layer
// and tape position, forward or backward; off, values are not errors.
#include <doctest/doctest.h>

#include <limits>
#include <vector>

#include "tapegrad.hpp"
#include "test_util.hpp"

using tg::Array;
using tg::Tensor;

TEST_CASE("detect_anomaly names the op, its layer and tape position of the first NaN or Inf") {
  tg::clear_tape();
  const test_util::ClearTapeOnExit clear_tape;
  Tensor x(Array{1.f, -1.f}, true);
  {
    const test_util::ScopedDetectAnomaly anomaly(true);  // off again at scope exit, also when a check throws
    CHECK_THROWS_WITH_AS(tg::log(x), doctest::Contains("the output of 'log' (tape entry #0) has"), tg::Error);
    tg::Sequential model(tg::Linear(2, 2), tg::ReLU());
    model.at<tg::Linear>(0).weight.value()(0, 0) = std::numeric_limits<float>::infinity();
    CHECK_THROWS_WITH_AS(model(Tensor(Array{{1.f, 1.f}})), doctest::Contains("'linear' in layer 0.Linear"),
                         tg::Error);
    // a backward that produces NaN
    Tensor y = tg::make_op("bad_backward", x.value(), {x}, [](const Array& dout) {
      return std::vector<Array>{Array(dout * std::numeric_limits<float>::quiet_NaN())};
    });
    CHECK_THROWS_WITH_AS(tg::sum(y).backward(), doctest::Contains("the backward of 'bad_backward'"),
                         tg::Error);
  }
  tg::clear_tape();
  CHECK_FALSE(tg::detect_anomaly());
  CHECK_NOTHROW(tg::log(x));  // off again: values are not errors
}
