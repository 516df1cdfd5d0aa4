// conv2d and max_pool2d: gradcheck, the fast kernel against the plain-loop one, output shapes, bad input.
#include <doctest/doctest.h>

#include "tapegrad.hpp"
#include "test_util.hpp"

using tg::Array;
using tg::Tensor;
using Inputs = std::vector<Tensor>;
using test_util::param;
constexpr auto check = test_util::check_gradients;

TEST_CASE("gradcheck: conv2d with stride, padding, dilation, rectangular kernels, with and without bias") {
  struct Case {
    tg::Shape x, w;
    tg::Conv2dOptions options;
  };
  const std::vector<Case> cases = {
      {{2, 3, 6, 6}, {4, 3, 3, 3}, {}},
      {{1, 2, 7, 6}, {3, 2, 2, 3}, {.stride = {2, 1}, .padding = {1, 0}}},
      {{2, 2, 7, 7}, {2, 2, 3, 3}, {.padding = {2, 2}, .dilation = {2, 2}}},
      {{1, 2, 5, 6}, {2, 2, 4, 4}, {.padding = tg::kSame}},
      {{2, 3, 5, 5}, {2, 3, 3, 3}, {.stride = {2, 2}, .padding = {1, 1}}},
  };
  for (const Case& c : cases) {
    INFO("x ", tg::shape_str(c.x), " w ", tg::shape_str(c.w));
    const auto opts = c.options;
    check([opts](const Inputs& in) { return tg::conv2d(in[0], in[1], in[2], opts); },
          {param(c.x, 1), param(c.w, 2), param({c.w[0]}, 3)});
    check([opts](const Inputs& in) { return tg::conv2d(in[0], in[1], Tensor{}, opts); },
          {param(c.x, 4), param(c.w, 5)});
  }
}

TEST_CASE("gradcheck: max_pool2d with overlapping windows and padding") {
  // distinct values, so no two elements of a window tie within the finite-difference step
  auto distinct = [](const tg::Shape& shape, std::uint64_t seed) {
    tg::Generator gen(seed);
    Array v = Array::from_shape(shape);
    std::vector<std::size_t> perm(v.size());
    std::iota(perm.begin(), perm.end(), 0);
    for (std::size_t i = perm.size(); i > 1; --i) std::swap(perm[i - 1], perm[gen.below(i)]);
    for (std::size_t i = 0; i < v.size(); ++i) v.data()[i] = 0.1f * static_cast<float>(perm[i]);
    return Tensor(std::move(v), true);
  };
  check([](const Inputs& in) { return tg::max_pool2d(in[0], {.kernel = {2, 2}}); }, {distinct({2, 2, 4, 4}, 1)});
  check([](const Inputs& in) { return tg::max_pool2d(in[0], {.kernel = {3, 3}, .stride = {1, 1}}); },
        {distinct({1, 2, 5, 5}, 2)});
  check([](const Inputs& in) { return tg::max_pool2d(in[0], {.kernel = {3, 2}, .stride = {2, 1}, .padding = {1, 1}}); },
        {distinct({2, 1, 6, 5}, 3)});
}

TEST_CASE("the im2col + SGEMM conv agrees with the plain seven-loop definition") {
  struct Case {
    tg::Shape x, w;
    tg::Conv2dOptions options;
  };
  const std::vector<Case> cases = {
      {{32, 3, 28, 28}, {4, 3, 4, 4}, {}},
      {{4, 3, 12, 10}, {128, 3, 3, 3}, {.stride = {2, 2}, .padding = {1, 1}}},
      {{3, 6, 14, 14}, {16, 6, 5, 5}, {}},
      {{2, 2, 9, 11}, {3, 2, 3, 2}, {.stride = {1, 2}, .padding = {2, 1}, .dilation = {2, 3}}},
  };
  for (const Case& c : cases) {
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

TEST_CASE("the direct stride-1 kernels and im2col + SGEMM agree with the definition, forward and backward") {
  struct Case {
    tg::Shape x, w;
    tg::Conv2dOptions options;
  };
  const std::vector<Case> cases = {
      {{3, 1, 28, 28}, {6, 1, 5, 5}, {.padding = {2, 2}}},               // lenet conv1
      {{5, 6, 14, 14}, {16, 6, 5, 5}, {}},                               // lenet conv2
      {{2, 3, 9, 7}, {13, 3, 3, 3}, {.padding = {1, 0}}},                // channel blocks with a remainder
      {{2, 2, 8, 9}, {5, 2, 4, 2}, {.padding = tg::kSame}},              // even kernel: bottom/right padding
      {{2, 2, 11, 10}, {3, 2, 3, 2}, {.padding = {2, 1}, .dilation = {2, 3}}},
      {{70, 2, 6, 6}, {9, 2, 1, 1}, {}},                                 // 1x1, many images (several chunks)
      {{1, 4, 3, 40}, {7, 4, 3, 5}, {.padding = {1, 2}}},                // wide and flat
      {{2, 3, 9, 17}, {32, 3, 5, 5}, {}},          // channels in lanes: odd output rows, a 13-pixel row in 2 tiles
      {{1, 2, 7, 7}, {16, 2, 3, 3}, {.padding = {1, 1}}},                // channels in lanes, padded
  };
  const tg::ConvAlgorithm before = tg::conv_algorithm();
  for (const Case& c : cases) {
    INFO("x ", tg::shape_str(c.x), " w ", tg::shape_str(c.w));
    const tg::Conv2dGeometry g = tg::conv2d_geometry(c.x, c.w, c.options);
    Array expected = Array::from_shape({g.batch, g.c_out, g.h_out, g.w_out});
    const Tensor x0 = param(c.x, 1), w0 = param(c.w, 2), b0 = param({c.w[0]}, 3);
    tg::conv2d_reference_forward(x0.value().data(), w0.value().data(), b0.value().data(), g, expected.data());
    const Array upstream = param(expected.shape(), 4).value();
    std::vector<std::vector<Array>> grads;
    for (const tg::ConvAlgorithm algorithm : {tg::ConvAlgorithm::Im2col, tg::ConvAlgorithm::Direct}) {
      tg::set_conv_algorithm(algorithm);
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
  tg::set_conv_algorithm(before);
}

TEST_CASE("conv2d and max_pool2d give the seed documents' output shapes") {
  const Tensor x1 = param({1, 3, 28, 28}, 1);
  const Tensor conv = tg::conv2d(x1, param({4, 3, 2, 2}, 2), param({4}, 3), {.stride = {2, 2}});
  CHECK(conv.shape() == tg::Shape{1, 4, 14, 14});
  CHECK(tg::max_pool2d(conv, {.kernel = {2, 2}, .stride = {2, 2}}).shape() == tg::Shape{1, 4, 7, 7});
  const Tensor big = tg::conv2d(param({4, 3, 12, 10}, 4), param({128, 3, 3, 3}, 5), param({128}, 6),
                                {.stride = {2, 2}, .padding = {1, 1}});
  CHECK(big.shape() == tg::Shape{4, 128, 6, 5});
  CHECK(tg::max_pool2d(param({1, 2, 3, 3}, 7), {.kernel = {2, 2}, .stride = {2, 2}}).shape() ==
        tg::Shape{1, 2, 1, 1});
  CHECK(tg::max_pool2d(param({32, 3, 28, 28}, 8), {.kernel = {4, 4}, .stride = {2, 2}}).shape() ==
        tg::Shape{32, 3, 13, 13});
  CHECK(tg::conv2d(x1, param({2, 3, 4, 4}, 9), Tensor{}, {.padding = tg::kSame}).shape() == tg::Shape{1, 2, 28, 28});
  tg::clear_tape();
}

TEST_CASE("max_pool2d routes the gradient to the first maximum of a window on ties") {
  Tensor x(Array{{{{1.f, 3.f, 3.f, 0.f}, {3.f, 2.f, 0.f, 3.f}}}}, true);  // [1, 1, 2, 4]
  Tensor y = tg::max_pool2d(x, {.kernel = {2, 2}});
  CHECK(y.value() == Array{{{{3.f, 3.f}}}});
  tg::sum(y).backward();
  CHECK(x.grad() == Array{{{{0.f, 1.f, 1.f, 0.f}, {0.f, 0.f, 0.f, 0.f}}}});
}

TEST_CASE("max_pool2d pads with -inf: an all-negative border is never replaced by a zero") {
  Tensor x(xt::full_like(Array::from_shape({1, 1, 3, 3}), -5.f), true);
  const Array y = tg::max_pool2d(x, {.kernel = {2, 2}, .stride = {2, 2}, .padding = {1, 1}}).value();
  CHECK(y.shape() == tg::Shape{1, 1, 2, 2});
  CHECK(xt::amax(y)() == -5.f);
  tg::clear_tape();
}

TEST_CASE("conv2d rejects bad shapes and options, naming the op and the shapes") {
  const Tensor x = param({2, 3, 8, 8}, 1);
  CHECK_THROWS_WITH_AS(tg::conv2d(x, param({4, 2, 3, 3}, 2), Tensor{}),
                       "conv2d: input has 3 channels but weight expects 2: input [2, 3, 8, 8], weight [4, 2, 3, 3]",
                       tg::Error);
  CHECK_THROWS_WITH_AS(tg::conv2d(x, param({4, 3, 9, 9}, 2), Tensor{}),
                       doctest::Contains("kernel 9x9 (spanning 9x9 with dilation) is larger than the padded input 8x8"),
                       tg::Error);
  CHECK_THROWS_WITH_AS(tg::conv2d(param({3, 8, 8}, 1), param({4, 3, 3, 3}, 2), Tensor{}),
                       "conv2d: expected input [N, C, H, W], got [3, 8, 8]", tg::Error);
  CHECK_THROWS_WITH_AS(tg::conv2d(x, param({4, 3, 3, 3}, 2), param({5}, 3)),
                       "conv2d: expected bias [4] for weight [4, 3, 3, 3], got [5]", tg::Error);
  CHECK_THROWS_AS(tg::conv2d(x, param({4, 3, 3, 3}, 2), Tensor{}, {.stride = {0, 1}}), tg::Error);
  CHECK_THROWS_AS(tg::conv2d(x, param({4, 3, 3, 3}, 2), Tensor{}, {.padding = {-1, 0}}), tg::Error);
  CHECK_THROWS_AS(tg::conv2d(x, param({4, 3, 3, 3}, 2), Tensor{}, {.dilation = {0, 1}}), tg::Error);
  CHECK_THROWS_WITH_AS(tg::conv2d(x, param({4, 3, 3, 3}, 2), Tensor{}, {.stride = {2, 2}, .padding = tg::kSame}),
                       doctest::Contains("'same' padding needs stride 1"), tg::Error);
}

TEST_CASE("max_pool2d rejects bad shapes and options") {
  CHECK_THROWS_WITH_AS(tg::max_pool2d(param({1, 1, 3, 3}, 1), {.kernel = {4, 4}}),
                       "max_pool2d: kernel 4x4 is larger than the padded input 3x3 (input [1, 1, 3, 3])", tg::Error);
  CHECK_THROWS_WITH_AS(tg::max_pool2d(param({1, 3, 3}, 1), {.kernel = {2, 2}}),
                       "max_pool2d: expected input [N, C, H, W], got [1, 3, 3]", tg::Error);
  CHECK_THROWS_AS(tg::max_pool2d(param({1, 1, 6, 6}, 1), {.kernel = {2, 2}, .padding = {2, 2}}), tg::Error);
  CHECK_THROWS_AS(tg::max_pool2d(param({1, 1, 6, 6}, 1), {.kernel = {0, 2}}), tg::Error);
}

TEST_CASE("inputs without pixels are rejected; an empty batch gives zero weight gradients") {
  CHECK_THROWS_WITH_AS(tg::max_pool2d(Tensor(xt::zeros<float>({1, 1, 0, 4}), true), {.kernel = {2, 2}, .padding = {1, 1}}),
                       doctest::Contains("max_pool2d: the input has no pixels"), tg::Error);
  CHECK_THROWS_WITH_AS(tg::conv2d(Tensor(xt::zeros<float>({1, 1, 4, 0})), param({2, 1, 3, 3}, 1), Tensor{},
                                  {.padding = {2, 2}}),
                       doctest::Contains("conv2d: the input has no pixels"), tg::Error);
  Tensor w = param({2, 1, 3, 3}, 2);
  tg::conv2d(Tensor(xt::zeros<float>({0, 1, 5, 5})), w, Tensor{}).backward(xt::zeros<float>({0, 2, 3, 3}));
  CHECK(w.grad() == xt::zeros<float>({2, 1, 3, 3}));
}
