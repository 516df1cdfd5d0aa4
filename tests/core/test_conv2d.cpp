// conv2d (core/ops/conv2d.hpp, kernels in core/kernels/): gradchecks, PyTorch fixtures, the fast kernels
// against the plain-loop reference kernel, output shapes, errors.
#include <doctest/doctest.h>

#include <array>
#include <cstring>
#include <string>
#include <vector>

#include "fixture_runner.hpp"
#include "tapegrad.hpp"
#include "test_util.hpp"

using tg::Array;
using tg::Tensor;
using namespace test_util;

namespace {

struct ConvShapes {
  tg::Shape x, w;
  tg::Conv2dOptions options;
};

bool is_same_padding(const Json& c) {
  const Json& padding = c.at("options").at("padding");
  return padding.is_string() && padding.get<std::string>() == "same";
}

// A conv2d fixture case: inputs x, weight and (when options.bias is not false) bias; options
// {"stride": [sh, sw], "padding": [ph, pw] or "same", "dilation": [dh, dw]}, spelled as a user would.
Tensor run_conv2d(const Inputs& t, const Json& c) {
  const Json& o = c.at("options");
  const Tensor bias = t.size() == 3 ? t[2] : Tensor{};
  if (is_same_padding(c)) {
    // PyTorch allows padding='same' only with stride 1; the fixture says so explicitly.
    REQUIRE(pair_of(o, "stride") == std::array<int, 2>{1, 1});
    REQUIRE(pair_of(o, "dilation") == std::array<int, 2>{1, 1});
    return tg::conv2d(t[0], t[1], bias, {.padding = tg::kSame});
  }
  return tg::conv2d(t[0], t[1], bias, conv2d_options(o));
}

}  // namespace

// ---- gradcheck and PyTorch -------------------------------------------------------------------------------

GRADCHECK_TEST_CASE("conv2d", "with stride, padding, dilation, rectangular kernels, with and without bias") {
  const std::vector<ConvShapes> cases = {
      {{2, 3, 6, 6}, {4, 3, 3, 3}, {}},
      {{1, 2, 7, 6}, {3, 2, 2, 3}, {.stride = {2, 1}, .padding = {1, 0}}},
      {{2, 2, 7, 7}, {2, 2, 3, 3}, {.padding = {2, 2}, .dilation = {2, 2}}},
      {{1, 2, 5, 6}, {2, 2, 4, 4}, {.padding = tg::kSame}},
      {{2, 3, 5, 5}, {2, 3, 3, 3}, {.stride = {2, 2}, .padding = {1, 1}}},
  };
  for (const ConvShapes& c : cases) {
    INFO("x ", tg::shape_str(c.x), " w ", tg::shape_str(c.w));
    const auto opts = c.options;
    check_gradients([opts](const Inputs& in) { return tg::conv2d(in[0], in[1], in[2], opts); },
                    {param(c.x, 1), param(c.w, 2), param({c.w[0]}, 3)});
    check_gradients([opts](const Inputs& in) { return tg::conv2d(in[0], in[1], Tensor{}, opts); },
                    {param(c.x, 4), param(c.w, 5)});
  }
}

PYTORCH_TEST_CASE("conv2d", "stride, padding, dilation, rectangular kernels, 128 filters, no bias") {
  check_pytorch_cases(kConvPool, op, run_conv2d, [](const Json& c) { return !is_same_padding(c); },
                      {"x", "weight", "bias"});
}

PYTORCH_TEST_CASE("conv2d", "padding tg::kSame as PyTorch padding='same', odd and even kernels") {
  check_pytorch_cases(kConvPool, op, run_conv2d, is_same_padding, {"x", "weight", "bias"});
}

// ---- kernels against the definition ----------------------------------------------------------------------

TEST_CASE("conv2d's im2col + SGEMM kernel agrees with the plain seven-loop definition") {
  const std::vector<ConvShapes> cases = {
      {{32, 3, 28, 28}, {4, 3, 4, 4}, {}},
      {{4, 3, 12, 10}, {128, 3, 3, 3}, {.stride = {2, 2}, .padding = {1, 1}}},
      {{3, 6, 14, 14}, {16, 6, 5, 5}, {}},
      {{2, 2, 9, 11}, {3, 2, 3, 2}, {.stride = {1, 2}, .padding = {2, 1}, .dilation = {2, 3}}},
  };
  for (const ConvShapes& c : cases) {
    INFO("x ", tg::shape_str(c.x), " w ", tg::shape_str(c.w));
    const Tensor x = param(c.x, 1), w = param(c.w, 2), b = param({c.w[0]}, 3);
    const tg::Conv2dGeometry g = tg::conv2d_geometry(c.x, c.w, c.options);
    Array expected = Array::from_shape({g.batch, g.c_out, g.h_out, g.w_out});
    tg::conv2d_reference_forward(x.value().data(), w.value().data(), b.value().data(), g, expected.data());
    const Array got = tg::conv2d(x, w, b, c.options).value();
    REQUIRE(got.shape() == expected.shape());
    CHECK(xt::amax(xt::abs(got - expected))() < 1e-4f);
  }
}

TEST_CASE(
    "conv2d's direct stride-1 kernels and im2col + SGEMM agree with the definition, forward and backward") {
  const std::vector<ConvShapes> cases = {
      {{3, 1, 28, 28}, {6, 1, 5, 5}, {.padding = {2, 2}}},   // lenet conv1
      {{5, 6, 14, 14}, {16, 6, 5, 5}, {}},                   // lenet conv2
      {{2, 3, 9, 7}, {13, 3, 3, 3}, {.padding = {1, 0}}},    // channel blocks with a remainder
      {{2, 2, 8, 9}, {5, 2, 4, 2}, {.padding = tg::kSame}},  // even kernel: bottom/right padding
      {{2, 2, 11, 10}, {3, 2, 3, 2}, {.padding = {2, 1}, .dilation = {2, 3}}},
      {{70, 2, 6, 6}, {9, 2, 1, 1}, {}},                   // 1x1, many images (several chunks)
      {{1, 4, 3, 40}, {7, 4, 3, 5}, {.padding = {1, 2}}},  // wide and flat
      {{2, 3, 9, 17}, {32, 3, 5, 5}, {}},  // channels in lanes: odd output rows, a 13-pixel row in 2 tiles
      {{1, 2, 7, 7}, {16, 2, 3, 3}, {.padding = {1, 1}}},  // channels in lanes, padded
  };
  for (const ConvShapes& c : cases) {
    INFO("x ", tg::shape_str(c.x), " w ", tg::shape_str(c.w));
    const tg::Conv2dGeometry g = tg::conv2d_geometry(c.x, c.w, c.options);
    Array expected = Array::from_shape({g.batch, g.c_out, g.h_out, g.w_out});
    const Tensor x0 = param(c.x, 1), w0 = param(c.w, 2), b0 = param({c.w[0]}, 3);
    tg::conv2d_reference_forward(x0.value().data(), w0.value().data(), b0.value().data(), g, expected.data());
    const Array upstream = param(expected.shape(), 4).value();
    std::vector<std::vector<Array>> grads;
    for (const tg::ConvAlgorithm algorithm : {tg::ConvAlgorithm::Im2col, tg::ConvAlgorithm::Direct}) {
      const ScopedConvAlgorithm forced(algorithm);  // restored even when a REQUIRE below fails
      const Tensor x = param(c.x, 1), w = param(c.w, 2), b = param({c.w[0]}, 3);
      Tensor y = tg::conv2d(x, w, b, c.options);
      REQUIRE(y.shape() == expected.shape());
      CHECK(xt::amax(xt::abs(y.value() - expected))() < 1e-4f);
      y.backward(upstream);
      grads.push_back({x.grad(), w.grad(), b.grad()});
    }
    for (std::size_t i = 0; i < 3; ++i) {
      INFO("gradient ", i);
      const Array& a = grads[0][i];
      CHECK(xt::amax(xt::abs(a - grads[1][i]))() < 1e-4f * (1.f + xt::amax(xt::abs(a))()));
    }
  }
}

// The backward runs the kernel family its forward ran, read from the tape entry, not the process-wide setting
// at backward time. Observable because the families add in different orders: their gradients differ in the
// last bits (required below, so the check can fail), and a backward of the wrong family gives the other's.
TEST_CASE("conv2d's backward runs its forward's kernel when set_conv_algorithm changes in between") {
  const ClearTapeOnExit clear_tape;
  // {dx, dweight, dbias} of sum(conv2d(x, w, b) * upstream), the forward under `forward`, the backward under
  // `backward`
  const auto gradients = [](const ConvShapes& c, tg::ConvAlgorithm forward, tg::ConvAlgorithm backward) {
    const Tensor x = param(c.x, 1), w = param(c.w, 2), b = param({c.w[0]}, 3);
    const ScopedConvAlgorithm during_forward(forward);
    Tensor y = tg::conv2d(x, w, b, c.options);
    const Array upstream = param(y.shape(), 4).value();
    const ScopedConvAlgorithm during_backward(backward);
    y.backward(upstream);
    return std::vector<Array>{x.grad(), w.grad(), b.grad()};
  };
  const auto same_bits = [](const std::vector<Array>& a, const std::vector<Array>& b) {
    for (std::size_t i = 0; i < a.size(); ++i)
      if (a[i].shape() != b[i].shape() || std::memcmp(a[i].data(), b[i].data(), a[i].size() * sizeof(float)))
        return false;
    return true;
  };
  using tg::ConvAlgorithm;
  const ConvShapes stride1{{4, 16, 12, 12}, {32, 16, 3, 3}, {.padding = {1, 1}}};  // Auto: the direct kernels
  const std::vector<Array> direct = gradients(stride1, ConvAlgorithm::Direct, ConvAlgorithm::Direct);
  const std::vector<Array> im2col = gradients(stride1, ConvAlgorithm::Im2col, ConvAlgorithm::Im2col);
  REQUIRE_FALSE(same_bits(direct, im2col));
  CHECK(same_bits(gradients(stride1, ConvAlgorithm::Direct, ConvAlgorithm::Im2col), direct));
  CHECK(same_bits(gradients(stride1, ConvAlgorithm::Im2col, ConvAlgorithm::Direct), im2col));
  CHECK(same_bits(gradients(stride1, ConvAlgorithm::Auto, ConvAlgorithm::Im2col), direct));

  // A depthwise conv: Auto runs the depthwise kernel; forced, it runs group by group.
  const ConvShapes depthwise{{4, 16, 12, 12}, {16, 1, 3, 3}, {.padding = {1, 1}, .groups = 16}};
  const std::vector<Array> own = gradients(depthwise, ConvAlgorithm::Auto, ConvAlgorithm::Auto);
  REQUIRE_FALSE(same_bits(own, gradients(depthwise, ConvAlgorithm::Im2col, ConvAlgorithm::Im2col)));
  CHECK(same_bits(gradients(depthwise, ConvAlgorithm::Auto, ConvAlgorithm::Im2col), own));
}

// ---- shapes and errors -----------------------------------------------------------------------------------

TEST_CASE("conv2d gives the seed documents' output shapes") {
  const ClearTapeOnExit clear_tape;
  const Tensor x1 = param({1, 3, 28, 28}, 1);
  const Tensor conv = tg::conv2d(x1, param({4, 3, 2, 2}, 2), param({4}, 3), {.stride = {2, 2}});
  CHECK(conv.shape() == tg::Shape{1, 4, 14, 14});
  const Tensor big = tg::conv2d(param({4, 3, 12, 10}, 4), param({128, 3, 3, 3}, 5), param({128}, 6),
                                {.stride = {2, 2}, .padding = {1, 1}});
  CHECK(big.shape() == tg::Shape{4, 128, 6, 5});
  CHECK(tg::conv2d(x1, param({2, 3, 4, 4}, 9), Tensor{}, {.padding = tg::kSame}).shape() ==
        tg::Shape{1, 2, 28, 28});
}

TEST_CASE("conv2d rejects bad shapes and options, naming the op and the shapes") {
  const Tensor x = param({2, 3, 8, 8}, 1);
  CHECK_THROWS_WITH_AS(
      tg::conv2d(x, param({4, 2, 3, 3}, 2), Tensor{}),
      "conv2d: input has 3 channels but weight expects 2: input [2, 3, 8, 8], weight [4, 2, 3, 3]",
      tg::Error);
  CHECK_THROWS_WITH_AS(
      tg::conv2d(x, param({4, 3, 9, 9}, 2), Tensor{}),
      doctest::Contains("kernel 9x9 (spanning 9x9 with dilation) is larger than the padded input 8x8"),
      tg::Error);
  CHECK_THROWS_WITH_AS(tg::conv2d(param({3, 8, 8}, 1), param({4, 3, 3, 3}, 2), Tensor{}),
                       "conv2d: expected input [N, C, H, W], got [3, 8, 8]", tg::Error);
  CHECK_THROWS_WITH_AS(tg::conv2d(x, param({4, 3, 3, 3}, 2), param({5}, 3)),
                       "conv2d: expected bias [4] for weight [4, 3, 3, 3], got [5]", tg::Error);
  CHECK_THROWS_AS(tg::conv2d(x, param({4, 3, 3, 3}, 2), Tensor{}, {.stride = {0, 1}}), tg::Error);
  CHECK_THROWS_AS(tg::conv2d(x, param({4, 3, 3, 3}, 2), Tensor{}, {.padding = {-1, 0}}), tg::Error);
  CHECK_THROWS_AS(tg::conv2d(x, param({4, 3, 3, 3}, 2), Tensor{}, {.dilation = {0, 1}}), tg::Error);
  CHECK_THROWS_WITH_AS(
      tg::conv2d(x, param({4, 3, 3, 3}, 2), Tensor{}, {.stride = {2, 2}, .padding = tg::kSame}),
      doctest::Contains("'same' padding needs stride 1"), tg::Error);
}

TEST_CASE("conv2d rejects an input without pixels") {
  CHECK_THROWS_WITH_AS(tg::conv2d(Tensor(xt::zeros<float>({1, 1, 4, 0})), param({2, 1, 3, 3}, 1), Tensor{},
                                  {.padding = {2, 2}}),
                       doctest::Contains("conv2d: the input has no pixels"), tg::Error);
}

TEST_CASE("conv2d of an empty batch gives zero weight gradients") {
  Tensor w = param({2, 1, 3, 3}, 2);
  tg::conv2d(Tensor(xt::zeros<float>({0, 1, 5, 5})), w, Tensor{}).backward(xt::zeros<float>({0, 2, 3, 3}));
  CHECK(w.grad() == xt::zeros<float>({2, 1, 3, 3}));
}
