// The evaluation loop `tapegrad train` (after every epoch) and `tapegrad eval` share
// (apps/cli/evaluation.hpp): loss, accuracy, confusion matrix and mistakes of a model on a test set.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "apps/tiny_dataset.hpp"
#include "cli/evaluation.hpp"
#include "tapegrad.hpp"

using namespace test_util;

namespace {

// Linear weights that copy pixel c to logit c: an image's bright pixel (255, normalized to 1) is its class.
tg::Sequential pixel_picker() {
  tg::Sequential model(tg::Flatten(), tg::Linear(4, 3));
  auto& linear = model.at<tg::Linear>(1);
  linear.weight.value() = tg::Array{{1.f, 0.f, 0.f, 0.f}, {0.f, 1.f, 0.f, 0.f}, {0.f, 0.f, 1.f, 0.f}};
  linear.bias.value() = tg::Array{0.f, 0.f, 0.f};
  return model;
}

}  // namespace

TEST_CASE("the evaluation loop of train and eval: loss, accuracy, confusion and mistakes in test order") {
  // 1x2x2 images, bright at pixel 0, 1, 2, 0: predicted 0, 1, 2, 0; labelled 0, 1, 1, 2.
  std::vector<std::uint8_t> bytes(4 * 4, 0);
  const std::size_t bright[] = {0, 1, 2, 0};
  for (std::size_t image = 0; image < 4; ++image) bytes[image * 4 + bright[image]] = 255;
  const TinySet test(1, 2, 2, bytes, {0, 1, 1, 2});
  tg::Sequential model = pixel_picker();
  model.train();
  const tg::cli::Evaluation e = tg::cli::evaluate_model(model, test, 3, /*batch_size=*/3);  // two batches
  CHECK(e.correct == 2);
  CHECK(e.accuracy == doctest::Approx(0.5));
  CHECK(e.confusion == std::vector<std::vector<std::size_t>>{{1, 0, 0}, {0, 1, 1}, {1, 0, 0}});
  REQUIRE(e.mistakes.size() == 2);
  CHECK(e.mistakes[0].index == 2);
  CHECK(e.mistakes[0].predicted == 2);
  CHECK(e.mistakes[1].index == 3);  // in the second batch: indices run on across batches
  CHECK(e.mistakes[1].predicted == 0);
  // Cross-entropy of one-hot logits: log(e + 2) - 1 when right, log(e + 2) when wrong; the mean.
  CHECK(e.loss == doctest::Approx(std::log(std::exp(1.0) + 2) - 0.5).epsilon(1e-6));
  CHECK(model.is_training());  // put back as it was
  model.eval();
  tg::cli::evaluate_model(model, test, 3);
  CHECK_FALSE(model.is_training());
}

TEST_CASE("the evaluation loop of train and eval refuses a label outside the model's classes") {
  const TinySet test(1, 2, 2, std::vector<std::uint8_t>(8, 0), {0, 3});
  tg::Sequential model = pixel_picker();
  CHECK_THROWS_WITH_AS(tg::cli::evaluate_model(model, test, 3),
                       "test example 1 has label 3, but the model has 3 classes", tg::Error);
}
