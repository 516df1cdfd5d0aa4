// The Conv2D layer with groups (layers/conv2d.hpp): weight [Cout, Cin/groups, Kh, Kw], PyTorch's default
// init over a filter's Cin/groups*Kh*Kw inputs, describe(), the model-file key groups=G and its errors.
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "tapegrad.hpp"
#include "test_util.hpp"

using test_util::model_error_of;
using tg::Tensor;

TEST_CASE("Conv2D with groups holds weight [Cout, Cin/groups, Kh, Kw] drawn with fan_in Cin/groups*Kh*Kw") {
  tg::manual_seed(3);
  tg::Conv2D depthwise(64, 64, 3, {.padding = {1, 1}, .groups = 64});
  CHECK(depthwise.weight.shape() == tg::Shape{64, 1, 3, 3});
  CHECK(depthwise.num_parameters() == 64 * 9 + 64);
  // fan_in 9: bound 1/3. With fan_in Cin*9 = 576 the bound would be 1/24: the largest of 576 draws is
  // far above that.
  const float bound = 1.f / 3.f;
  CHECK(xt::amax(xt::abs(depthwise.weight.value()))() <= bound);
  CHECK(xt::amax(xt::abs(depthwise.weight.value()))() > 0.9f * bound);
  CHECK(xt::amax(xt::abs(depthwise.bias.value()))() <= bound);
  CHECK(xt::amax(xt::abs(depthwise.bias.value()))() > 0.5f * bound);

  tg::Conv2D grouped(8, 12, {3, 5}, {.groups = 4}, /*bias=*/false);  // fan_in 2*3*5 = 30
  CHECK(grouped.weight.shape() == tg::Shape{12, 2, 3, 5});
  CHECK(grouped.num_parameters() == 12 * 2 * 15);
  CHECK(xt::amax(xt::abs(grouped.weight.value()))() <= 1.f / std::sqrt(30.f));
  CHECK(xt::amax(xt::abs(grouped.weight.value()))() > 0.9f / std::sqrt(30.f));
}

TEST_CASE("Conv2D with groups runs, describes itself with its groups and gives its output shape") {
  const test_util::ClearTapeOnExit clear_tape;
  tg::Conv2D conv(32, 32, 3, {.stride = {2, 2}, .padding = {1, 1}, .groups = 32});
  CHECK(conv.describe() == "Conv2D(32 -> 32, kernel 3x3, stride 2x2, padding 1x1, groups 32)");
  CHECK(conv.output_shape({32, 16, 16}) == tg::Shape{32, 8, 8});
  CHECK(conv(Tensor(xt::ones<float>({2, 32, 16, 16}))).shape() == tg::Shape{2, 32, 8, 8});
  CHECK(tg::Conv2D(4, 6, 3).describe() == "Conv2D(4 -> 6, kernel 3x3)");  // groups 1 not shown
  CHECK_THROWS_WITH_AS(tg::Conv2D(6, 4, 3, {.groups = 4}),
                       "Conv2D: groups=4 must be >= 1 and divide both the 6 input and the 4 output channels",
                       tg::Error);
  CHECK_THROWS_AS(tg::Conv2D(4, 4, 3, {.groups = 0}), tg::Error);
}

TEST_CASE("model file: conv2d groups=G builds a grouped Conv2D and round-trips through to_line") {
  const std::string text =
      "conv2d 16 3 padding=1\n"
      "conv2d 16 3 stride=2 padding=1 groups=16\n"
      "conv2d 32 1 groups=4 bias=false\n"
      "flatten\n"
      "linear 10\n";
  tg::Sequential model = tg::model_from_text(text, {3, 8, 8}, 10);
  const auto& depthwise = dynamic_cast<const tg::Conv2D&>(model[1]);
  CHECK(depthwise.options.groups == 16);
  CHECK(depthwise.weight.shape() == tg::Shape{16, 1, 3, 3});
  CHECK(depthwise.to_line() == "conv2d 16 3 stride=2 padding=1 groups=16");
  const auto& grouped = dynamic_cast<const tg::Conv2D&>(model[2]);
  CHECK(grouped.weight.shape() == tg::Shape{32, 4, 1, 1});
  CHECK(grouped.to_line() == "conv2d 32 1 groups=4 bias=false");
  CHECK(model[0].to_line() == "conv2d 16 3 padding=1");
  CHECK(tg::model_to_text(model) == text);
  CHECK(model.num_parameters() == (16 * 27 + 16) + (16 * 9 + 16) + 32 * 4 + (32 * 16 * 10 + 10));
}

TEST_CASE("model file: groups that do not divide the channels, or are < 1, name the line") {
  CHECK(model_error_of("conv2d 32 3 groups=3\n", {32, 8, 8}) ==
        "net.tg:1: conv2d 32 3 groups=3: groups=3 does not divide the 32 input channels (input [32, 8, 8])");
  CHECK(model_error_of("conv2d 6 3 groups=4\n", {8, 8, 8}) ==
        "net.tg:1: conv2d 6 3 groups=4: groups=4 does not divide the 6 output channels");
  CHECK(model_error_of("conv2d 6 3 groups=0\n", {6, 8, 8}).rfind("net.tg:1: conv2d 6 3 groups=0: ", 0) == 0);
}
