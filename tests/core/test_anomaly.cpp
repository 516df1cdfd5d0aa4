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

TEST_CASE("detect_anomaly names the model-file line of the layer, forward and backward") {
  tg::clear_tape();
  const test_util::ClearTapeOnExit clear_tape;
  const test_util::ScopedDetectAnomaly anomaly(true);
  tg::Sequential model = tg::model_from_text("# net.tg\nlinear 2\nrelu\nlinear classes\n", {2}, 3, "net.tg");
  model.at<tg::Linear>(2).weight.value()(0, 0) = std::numeric_limits<float>::infinity();
  CHECK_THROWS_WITH_AS(
      model(Tensor(Array{{1.f, 1.f}})),
      doctest::Contains("the output of 'linear' in layer 2.Linear [net.tg:4 linear classes] (tape entry #"),
      tg::Error);
  tg::clear_tape();
  // a backward step inside a layer with a source (as Sequential opens for a layer from a model file)
  Tensor x(Array{1.f, -1.f}, true);
  Tensor y;
  {
    const tg::LayerScope scope("1.Bad", std::make_shared<const std::string>("net.tg:3 bad"));
    y = tg::make_op("bad_backward", x.value(), {x}, [](const Array& dout) {
      return std::vector<Array>{Array(dout * std::numeric_limits<float>::quiet_NaN())};
    });
  }
  CHECK_THROWS_WITH_AS(
      tg::sum(y).backward(),
      doctest::Contains("the backward of 'bad_backward' in layer 1.Bad [net.tg:3 bad] (tape entry #0)"),
      tg::Error);
}

TEST_CASE("detect_anomaly names a layer not built from a model file without a source") {
  tg::clear_tape();
  const test_util::ClearTapeOnExit clear_tape;
  const test_util::ScopedDetectAnomaly anomaly(true);
  tg::Sequential model(tg::Linear(2, 2));
  model.at<tg::Linear>(0).weight.value()(0, 0) = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH_AS(model(Tensor(Array{{1.f, 1.f}})),
                       doctest::Contains("the output of 'linear' in layer 0.Linear (tape entry #0) has"),
                       tg::Error);
}
