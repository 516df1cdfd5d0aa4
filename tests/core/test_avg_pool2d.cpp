// avg_pool2d and global_avg_pool2d (core/ops/pooling.hpp, kernels in core/kernels/avg_pool2d.hpp):
// gradchecks, PyTorch fixtures, the rows and simd kernels against the reference, zero padding in the divisor,
// errors.
#include <doctest/doctest.h>

#include <array>
#include <string>
#include <vector>

#include "fixture_runner.hpp"
#include "tapegrad.hpp"
#include "test_util.hpp"

using tg::Array;
using tg::Tensor;
using namespace test_util;

namespace {

// {"kernel": [kh, kw], "stride": [sh, sw], "padding": [ph, pw]}
tg::AvgPool2dOptions pool_options(const Json& o) {
  return {.kernel = pair_of(o, "kernel"), .stride = pair_of(o, "stride"), .padding = pair_of(o, "padding")};
}

// The rows and reference kernels on the same random input and gradient: outputs and input gradients agree to
// rounding (they add in different orders).
void check_rows_match_reference(const tg::Shape& x_shape, const tg::AvgPool2dOptions& options,
                                std::uint64_t seed) {
  const tg::Pool2dGeometry g = tg::avg_pool2d_geometry(x_shape, options);
  INFO("input ", tg::shape_str(x_shape), ", kernel ", g.kh, "x", g.kw, ", stride ", g.stride_h, "x",
       g.stride_w, ", padding ", g.pad_h, "x", g.pad_w);
  tg::Generator gen(seed);
  const Array x = tg::rand_uniform(x_shape, -2.f, 2.f, gen);
  const Array dout = tg::rand_uniform({x_shape[0], x_shape[1], g.h_out, g.w_out}, -2.f, 2.f, gen);
  std::vector<float> fast_out(dout.size(), -1.f), ref_out(dout.size(), -2.f);
  // garbage in dx, since both backwards overwrite it
  std::vector<float> fast_dx(x.size(), 7.f), ref_dx(x.size(), -7.f);
  tg::avg_pool2d_rows_forward(x.data(), g, fast_out.data());
  tg::avg_pool2d_reference_forward(x.data(), g, ref_out.data());
  tg::avg_pool2d_rows_backward(dout.data(), g, fast_dx.data());
  tg::avg_pool2d_reference_backward(dout.data(), g, ref_dx.data());
  int mismatches = 0;
  for (std::size_t i = 0; i < ref_out.size(); ++i) mismatches += !close(fast_out[i], ref_out[i]);
  for (std::size_t i = 0; i < ref_dx.size(); ++i) mismatches += !close(fast_dx[i], ref_dx[i]);
  CHECK(mismatches == 0);
}

}  // namespace

// ---- gradcheck and PyTorch -------------------------------------------------------------------------------

GRADCHECK_TEST_CASE("avg_pool2d", "with 2x2 windows, overlap, padding and rectangular windows") {
  check_gradients(
      [](const Inputs& in) {
        return tg::avg_pool2d(in[0], {.kernel = {2, 2}});
      },
      {param({2, 2, 5, 4}, 1)});
  check_gradients(
      [](const Inputs& in) {
        return tg::avg_pool2d(in[0], {.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}});
      },
      {param({1, 2, 6, 7}, 2)});
  check_gradients(
      [](const Inputs& in) {
        return tg::avg_pool2d(in[0], {.kernel = {3, 2}, .stride = {1, 3}, .padding = {1, 0}});
      },
      {param({2, 1, 5, 8}, 3)});
}

GRADCHECK_TEST_CASE("global_avg_pool2d", "on images and on 1x1 planes") {
  check_gradients([](const Inputs& in) { return tg::global_avg_pool2d(in[0]); }, {param({2, 3, 4, 5}, 4)});
  check_gradients([](const Inputs& in) { return tg::global_avg_pool2d(in[0]); }, {param({3, 2, 1, 1}, 5)});
}

PYTORCH_TEST_CASE("avg_pool2d", "padding counted in the divisor, overlap, rectangular windows, odd sizes") {
  check_pytorch_cases(
      kAvgPool, op,
      [](const Inputs& t, const Json& c) { return tg::avg_pool2d(t[0], pool_options(c.at("options"))); }, {},
      {"x"});
}

PYTORCH_TEST_CASE("global_avg_pool2d", "as nn.AdaptiveAvgPool2d(1) then flatten") {
  check_pytorch_cases(kAvgPool, op, [](const Inputs& t, const Json&) { return tg::global_avg_pool2d(t[0]); },
                      {}, {"x"});
}

// ---- kernels ---------------------------------------------------------------------------------------------

TEST_CASE("avg_pool2d rows kernels equal the reference kernels") {
  std::uint64_t seed = 10;
  // the 2x2 stride 2 special case, with odd sizes that drop a row and a column
  for (const tg::Shape& s : std::vector<tg::Shape>{{2, 3, 8, 8}, {1, 2, 7, 9}, {3, 1, 2, 2}, {1, 1, 3, 33}}) {
    check_rows_match_reference(s, {.kernel = {2, 2}}, seed++);
  }
  const std::vector<tg::AvgPool2dOptions> options = {
      {.kernel = {2, 2}, .stride = {1, 1}},                     // overlap
      {.kernel = {2, 2}, .padding = {1, 1}},                    // padding, no overlap
      {.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}},  // overlap and padding
      {.kernel = {3, 3}},                                       // stride = kernel 3
      {.kernel = {3, 2}, .stride = {1, 2}},                     // rectangular
      {.kernel = {2, 5}, .stride = {3, 1}, .padding = {1, 2}},  // rectangular, padded, stride > kernel
      {.kernel = {4, 4}, .stride = {3, 3}, .padding = {2, 2}},  // padding of half the kernel
      {.kernel = {1, 1}, .stride = {2, 3}},                     // subsampling
      {.kernel = {5, 5}, .stride = {1, 1}},                     // large window
      {.kernel = {2, 2}, .stride = {2, 1}},                     // 2x2 but not stride 2: the general path
  };
  for (const tg::Shape& s :
       std::vector<tg::Shape>{{2, 3, 9, 9}, {1, 2, 6, 11}, {2, 1, 13, 5}, {1, 40, 7, 7}}) {
    for (const tg::AvgPool2dOptions& o : options) check_rows_match_reference(s, o, seed++);
  }
}

TEST_CASE("global_avg_pool2d simd kernels equal the reference over a window of the whole plane") {
  std::uint64_t seed = 100;
  for (const tg::Shape& s :
       std::vector<tg::Shape>{{2, 3, 4, 4}, {1, 5, 1, 1}, {2, 2, 7, 3}, {1, 1, 33, 31}, {64, 16, 8, 8}}) {
    INFO("input ", tg::shape_str(s));
    const std::size_t planes = s[0] * s[1], plane = s[2] * s[3];
    const tg::Pool2dGeometry whole = tg::avg_pool2d_geometry(
        s, {.kernel = {static_cast<int>(s[2]), static_cast<int>(s[3])}, .stride = {1, 1}});
    tg::Generator gen(seed++);
    const Array x = tg::rand_uniform(s, -2.f, 2.f, gen);
    const Array dout = tg::rand_uniform({planes}, -2.f, 2.f, gen);
    std::vector<float> fast_out(planes), ref_out(planes), fast_dx(x.size(), 3.f), ref_dx(x.size(), -3.f);
    tg::global_avg_pool2d_simd_forward(x.data(), planes, plane, fast_out.data());
    tg::avg_pool2d_reference_forward(x.data(), whole, ref_out.data());
    tg::global_avg_pool2d_simd_backward(dout.data(), planes, plane, fast_dx.data());
    tg::avg_pool2d_reference_backward(dout.data(), whole, ref_dx.data());
    int mismatches = 0;
    for (std::size_t i = 0; i < planes; ++i) mismatches += !close(fast_out[i], ref_out[i]);
    for (std::size_t i = 0; i < x.size(); ++i) mismatches += !close(fast_dx[i], ref_dx[i]);
    CHECK(mismatches == 0);
  }
}

// ---- behaviour, shapes and errors ------------------------------------------------------------------------

TEST_CASE("avg_pool2d counts padded zeros in the divisor, as nn.AvgPool2d(count_include_pad=True)") {
  const ClearTapeOnExit clear_tape;
  Tensor x(xt::ones<float>({1, 1, 2, 2}), true);
  // 2x2 windows with padding 1 over a 2x2 image of ones: each window holds one image cell and three zeros
  Tensor y = tg::avg_pool2d(x, {.kernel = {2, 2}, .padding = {1, 1}});
  CHECK(y.value() == Array{{{{0.25f, 0.25f}, {0.25f, 0.25f}}}});
  tg::sum(y).backward();
  CHECK(x.grad() == Array{{{{0.25f, 0.25f}, {0.25f, 0.25f}}}});
}

TEST_CASE("avg_pool2d: stride 0 means the kernel size; output shapes are floor sizes") {
  const ClearTapeOnExit clear_tape;
  const Tensor x = param({2, 3, 7, 9}, 1);
  CHECK(tg::avg_pool2d(x, {.kernel = {3, 2}, .stride = {0, 0}}).value() ==
        tg::avg_pool2d(x, {.kernel = {3, 2}, .stride = {3, 2}}).value());
  CHECK(tg::avg_pool2d(x).shape() == tg::Shape{2, 3, 3, 4});
  CHECK(tg::avg_pool2d(x, {.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}}).shape() ==
        tg::Shape{2, 3, 4, 5});
  CHECK(tg::global_avg_pool2d(x).shape() == tg::Shape{2, 3});
}

TEST_CASE("avg_pool2d rejects bad shapes and options") {
  CHECK_THROWS_WITH_AS(tg::avg_pool2d(param({1, 1, 3, 3}, 1), {.kernel = {4, 4}}),
                       "avg_pool2d: kernel 4x4 is larger than the padded input 3x3 (input [1, 1, 3, 3])",
                       tg::Error);
  CHECK_THROWS_WITH_AS(tg::avg_pool2d(param({1, 1, 6, 6}, 1), {.kernel = {2, 2}, .padding = {2, 1}}),
                       "avg_pool2d: padding must be between 0 and half the kernel [2, 2], got [2, 1] (input "
                       "[1, 1, 6, 6])",
                       tg::Error);
  CHECK_THROWS_WITH_AS(tg::avg_pool2d(param({1, 3, 3}, 1), {.kernel = {2, 2}}),
                       "avg_pool2d: expected input [N, C, H, W], got [1, 3, 3]", tg::Error);
  CHECK_THROWS_WITH_AS(tg::avg_pool2d(param({1, 1, 6, 6}, 1), {.kernel = {2, 2}, .stride = {-1, 2}}),
                       "avg_pool2d: stride must be >= 1, got [-1, 2]", tg::Error);
  CHECK_THROWS_WITH_AS(tg::avg_pool2d(param({1, 1, 6, 6}, 1), {.kernel = {0, 2}}),
                       "avg_pool2d: kernel must be >= 1, got [0, 2]", tg::Error);
  CHECK_THROWS_WITH_AS(tg::avg_pool2d(Tensor(xt::zeros<float>({1, 1, 0, 4}), true), {.kernel = {2, 2}}),
                       "avg_pool2d: the input has no pixels: [1, 1, 0, 4]", tg::Error);
}

TEST_CASE("global_avg_pool2d rejects an input that is not [N, C, H, W] images") {
  CHECK_THROWS_WITH_AS(tg::global_avg_pool2d(param({2, 12}, 1)),
                       "global_avg_pool2d: expected input [N, C, H, W], got [2, 12]", tg::Error);
  CHECK_THROWS_WITH_AS(tg::global_avg_pool2d(Tensor(xt::zeros<float>({1, 2, 3, 0}), true)),
                       "global_avg_pool2d: the input has no pixels: [1, 2, 3, 0]", tg::Error);
}
