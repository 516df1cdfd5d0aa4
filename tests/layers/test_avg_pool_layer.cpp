// The AvgPool2D and GlobalAvgPool2D layers (layers/pooling.hpp): forward is the op, output_shape, describe,
// model-file lines (avgpool2d, globalavgpool2d), their errors and the model_to_text round trip.
#include <doctest/doctest.h>

#include <string>

#include "tapegrad.hpp"
#include "test_util.hpp"

using test_util::model_error_of;
using tg::Tensor;

TEST_CASE("AvgPool2D(k) pools k x k windows with stride k, as PyTorch's nn.AvgPool2d(k)") {
  const test_util::ClearTapeOnExit clear_tape;
  const Tensor x = test_util::param({2, 3, 8, 7}, 1);
  tg::AvgPool2D pool(2);
  const Tensor y = pool(x);
  CHECK(y.shape() == tg::Shape{2, 3, 4, 3});
  CHECK(y.value() == tg::avg_pool2d(x, {.kernel = {2, 2}, .stride = {2, 2}}).value());
  CHECK(pool.parameters().empty());
  CHECK(pool.describe() == "AvgPool2D(kernel 2x2)");
  CHECK(pool.output_shape({3, 8, 7}) == tg::Shape{3, 4, 3});

  tg::AvgPool2D padded({.kernel = {3, 2}, .stride = {2, 1}, .padding = {1, 1}});
  CHECK(padded.describe() == "AvgPool2D(kernel 3x2, stride 2x1, padding 1x1)");
  CHECK(padded(x).value() ==
        tg::avg_pool2d(x, {.kernel = {3, 2}, .stride = {2, 1}, .padding = {1, 1}}).value());
  CHECK(padded.output_shape({3, 8, 7}) == tg::Shape{3, 4, 8});
  CHECK_THROWS_WITH_AS(tg::AvgPool2D(0), "AvgPool2D: kernel must be >= 1, got [0, 0]", tg::Error);
}

TEST_CASE("GlobalAvgPool2D averages each channel: [N, C, H, W] -> [N, C]") {
  const test_util::ClearTapeOnExit clear_tape;
  const Tensor x = test_util::param({2, 3, 5, 4}, 2);
  tg::GlobalAvgPool2D pool;
  const Tensor y = pool(x);
  CHECK(y.shape() == tg::Shape{2, 3});
  CHECK(y.value() == tg::global_avg_pool2d(x).value());
  CHECK(pool.describe() == "GlobalAvgPool2D");
  CHECK(pool.output_shape({3, 5, 4}) == tg::Shape{3});
  CHECK_THROWS_WITH_AS(pool.output_shape({60}), "expected input [C, H, W], got [60]", tg::Error);
}

TEST_CASE("model file: avgpool2d and globalavgpool2d lines, output shapes equal forward's") {
  tg::Sequential m = tg::model_from_text(
      "conv2d 8 3 padding=1\navgpool2d 2\nconv2d 8 3\navgpool2d 3x2 stride=2x1 padding=1\nrelu\n"
      "avgpool2d 3 stride=2\nglobalavgpool2d\nlinear classes\n",
      {3, 32, 32}, 10, "net.tg");
  tg::NoGradGuard no_grad;
  tg::Tensor x(tg::Array(xt::zeros<float>({2, 3, 32, 32})));
  tg::Shape per_example{3, 32, 32};
  for (std::size_t i = 0; i < m.size(); ++i) {
    INFO("layer ", i, " ", m[i].describe());
    x = m[i](x);
    per_example = m[i].output_shape(per_example);
    CHECK(per_example == tg::Shape(x.shape().begin() + 1, x.shape().end()));
  }
  CHECK(m[1].describe() == "AvgPool2D(kernel 2x2)");
  CHECK(m[3].describe() == "AvgPool2D(kernel 3x2, stride 2x1, padding 1x1)");
  CHECK(m.output_shape({3, 32, 32}) == tg::Shape{10});
}

TEST_CASE("model file: avgpool2d and globalavgpool2d round-trip through model_to_text") {
  const std::string text =
      "avgpool2d 3x2 stride=2x1 padding=1x1\navgpool2d 2 stride=2\navgpool2d 3 stride=1 padding=1\n"
      "globalavgpool2d\nlinear classes\n";
  tg::Sequential m = tg::model_from_text(text, {4, 17, 16}, 10);
  const std::string printed = tg::model_to_text(m);
  CHECK(printed ==
        "avgpool2d 3x2 stride=2x1 padding=1\navgpool2d 2\navgpool2d 3 stride=1 padding=1\nglobalavgpool2d\n"
        "linear 10\n");
  CHECK(tg::model_to_text(tg::model_from_text(printed, {4, 17, 16}, 10)) == printed);

  // built in C++, printed, parsed back: the same lines
  tg::Sequential cpp(tg::AvgPool2D({.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}}), tg::AvgPool2D(2),
                     tg::GlobalAvgPool2D(), tg::Linear(4, 10));
  CHECK(tg::model_to_text(cpp) ==
        "avgpool2d 3 stride=2 padding=1\navgpool2d 2\nglobalavgpool2d\nlinear 10\n");
  CHECK(tg::model_to_text(tg::model_from_text(tg::model_to_text(cpp), {4, 17, 16}, 10)) ==
        tg::model_to_text(cpp));
}

TEST_CASE("model file: avgpool2d and globalavgpool2d errors name the line") {
  CHECK(model_error_of("avgpool2d 100\n") ==
        "net.tg:1: avgpool2d 100: kernel 100x100 is larger than the padded input 28x28 (input [1, 28, 28])");
  CHECK(model_error_of("avgpool2d 2 padding=2\n") ==
        "net.tg:1: avgpool2d 2 padding=2: avg_pool2d: padding must be between 0 and half the kernel [2, 2], "
        "got "
        "[2, 2] (input [1, 1, 28, 28])");
  CHECK(model_error_of("avgpool2d 2 stride=0\n") ==
        "net.tg:1: avgpool2d 2 stride=0: stride must be >= 1, got 0");
  CHECK(model_error_of("avgpool2d\n").find("net.tg:1: avgpool2d: ") == 0);
  CHECK(model_error_of("avgpool2d 2 size=3\n") ==
        "net.tg:1: avgpool2d: unknown key 'size' (allowed: stride, padding)");
  CHECK(model_error_of("flatten\navgpool2d 2\n") ==
        "net.tg:2: avgpool2d 2: input is [784]; avgpool2d needs [C, H, W] images");
  CHECK(model_error_of("flatten\nglobalavgpool2d\n") ==
        "net.tg:2: globalavgpool2d: input is [784]; globalavgpool2d needs [C, H, W] images");
  CHECK(model_error_of("globalavgpool2d 2\n") ==
        "net.tg:1: globalavgpool2d: unexpected argument '2' (usage: globalavgpool2d)");
}
