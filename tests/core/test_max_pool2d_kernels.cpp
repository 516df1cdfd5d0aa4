// The max-pooling kernels that keep each window's argmax (core/kernels/max_pool2d.cpp) against the plain
// one-window-at-a-time reference, forward (values and argmax) and backward; and the reference against a few
// windows worked out by hand.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "core/kernels/max_pool2d.hpp"
#include "core/runtime/random.hpp"
#include "test_util.hpp"

namespace {

struct Case {
  const char* name;
  std::size_t planes, h, w, kh, kw, stride_h, stride_w, pad_h, pad_w;
};

tg::Pool2dGeometry geometry(const Case& c) {
  tg::Pool2dGeometry g{c.planes, c.h, c.w, c.kh, c.kw, c.stride_h, c.stride_w, c.pad_h, c.pad_w, 0, 0};
  g.h_out = (c.h + 2 * c.pad_h - c.kh) / c.stride_h + 1;
  g.w_out = (c.w + 2 * c.pad_w - c.kw) / c.stride_w + 1;
  return g;
}

// The compile-time 2x2, 3x3 and 4x4 kernels, the generic one (odd and rectangular windows), overlapping
// windows (stride < kernel), windows that skip cells (stride > kernel), the padded path; enough planes to
// run in parallel.
const std::vector<Case>& cases() {
  static const std::vector<Case> all = {
      {"2x2 stride 2", 40, 8, 10, 2, 2, 2, 2, 0, 0},
      {"2x2 stride 2, odd input (last row and column dropped)", 6, 7, 9, 2, 2, 2, 2, 0, 0},
      {"2x2 stride 2, rows of 25 windows (vector steps and a remainder)", 20, 5, 51, 2, 2, 2, 2, 0, 0},
      {"3x3 stride 2 (overlapping)", 40, 9, 11, 3, 3, 2, 2, 0, 0},
      {"3x3 stride 3", 5, 9, 9, 3, 3, 3, 3, 0, 0},
      {"4x4 stride 4", 3, 12, 8, 4, 4, 4, 4, 0, 0},
      {"2x2 stride 1", 3, 5, 6, 2, 2, 1, 1, 0, 0},
      {"5x5 stride 2 (generic kernel)", 4, 11, 13, 5, 5, 2, 2, 0, 0},
      {"3x2 stride (2, 1) (generic, rectangular)", 4, 7, 8, 3, 2, 2, 1, 0, 0},
      {"2x2 stride 3 (skips cells)", 4, 8, 8, 2, 2, 3, 3, 0, 0},
      {"3x3 stride 2 padding 1", 40, 9, 10, 3, 3, 2, 2, 1, 1},
      {"2x2 stride 2 padding 1", 4, 6, 7, 2, 2, 2, 2, 1, 1},
      {"4x4 stride 1 padding 2", 3, 5, 5, 4, 4, 1, 1, 2, 2},
      {"3x5 stride (1, 2) padding (1, 2)", 3, 6, 9, 3, 5, 1, 2, 1, 2},
  };
  return all;
}

enum class Data { Random, Ties, NaNs };

// Random values; or few distinct values (every window has ties); or random values with one cell in ten NaN.
std::vector<float> input(const tg::Pool2dGeometry& g, Data data, std::uint64_t seed) {
  tg::Generator gen(seed);
  std::vector<float> x(g.planes * g.h * g.w);
  for (float& v : x) {
    if (data == Data::Ties) {
      v = static_cast<float>(gen.below(3)) - 1.f;  // -1, 0 or 1
    } else {
      v = gen.uniform(-1.f, 1.f);
      if (data == Data::NaNs && gen.below(10) == 0) v = test_util::kNaN;
    }
  }
  return x;
}

// Equal, NaN equal to NaN.
bool same(float a, float b) { return a == b || (std::isnan(a) && std::isnan(b)); }

void check_against_reference(Data data) {
  for (const Case& c : cases()) {
    INFO(c.name);
    const tg::Pool2dGeometry g = geometry(c);
    const std::vector<float> x = input(g, data, 7);
    const std::size_t out_size = g.planes * g.h_out * g.w_out;
    std::vector<float> out(out_size, -7.f), ref_out(out_size, -5.f);
    std::vector<std::int32_t> argmax(out_size, -7), ref_argmax(out_size, -5);
    tg::max_pool2d_argmax_forward(x.data(), g, out.data(), argmax.data());
    tg::max_pool2d_reference_forward(x.data(), g, ref_out.data(), ref_argmax.data());
    for (std::size_t k = 0; k < out_size; ++k) {
      INFO("output ", k, " of ", out_size);
      REQUIRE(same(out[k], ref_out[k]));
      REQUIRE(argmax[k] == ref_argmax[k]);
      REQUIRE(same(x[k / (g.h_out * g.w_out) * g.h * g.w + static_cast<std::size_t>(argmax[k])], out[k]));
    }

    tg::Generator gen(11);
    std::vector<float> dout(out_size);
    for (float& v : dout) v = gen.uniform(-1.f, 1.f);
    std::vector<float> dx(x.size(), test_util::kNaN),
        ref_dx(x.size(), test_util::kNaN);  // both overwrite every element
    tg::max_pool2d_argmax_backward(dout.data(), argmax.data(), g, dx.data());
    tg::max_pool2d_reference_backward(dout.data(), x.data(), g, ref_dx.data());
    for (std::size_t i = 0; i < x.size(); ++i) {
      INFO("input ", i);
      REQUIRE(std::abs(dx[i] - ref_dx[i]) <= 1e-6f);  // the same adds, maybe in another order
    }
  }
}

}  // namespace

TEST_CASE("max_pool2d argmax kernels agree with the reference on random data, forward and backward") {
  check_against_reference(Data::Random);
}

TEST_CASE("max_pool2d argmax kernels agree with the reference on ties (the first maximum wins)") {
  check_against_reference(Data::Ties);
}

TEST_CASE(
    "max_pool2d argmax kernels agree with the reference with NaNs (NaN propagates, the last NaN wins)") {
  check_against_reference(Data::NaNs);
}

TEST_CASE("max_pool2d reference: hand-worked windows with ties, NaN and padding") {
  // one plane 2x4, 2x2 windows stride 2: [1 3 | 5 nan]
  //                                       [3 2 | nan 1]
  const std::vector<float> x = {1, 3, 5, test_util::kNaN, 3, 2, test_util::kNaN, 1};
  tg::Pool2dGeometry g{1, 2, 4, 2, 2, 2, 2, 0, 0, 1, 2};
  std::vector<float> out(2);
  std::vector<std::int32_t> argmax(2);
  tg::max_pool2d_reference_forward(x.data(), g, out.data(), argmax.data());
  CHECK(out[0] == 3.f);
  CHECK(argmax[0] == 1);  // the first 3 (row 0), not the one at index 4
  CHECK(std::isnan(out[1]));
  CHECK(argmax[1] == 6);  // the last NaN, as PyTorch's `val > max || isnan(val)` update
  std::vector<float> dx(8, test_util::kNaN);
  const std::vector<float> dout = {10.f, 20.f};
  tg::max_pool2d_reference_backward(dout.data(), x.data(), g, dx.data());
  CHECK(dx == std::vector<float>{0, 10, 0, 0, 0, 0, 20, 0});

  // all-negative plane 1x2 with padding 1, 2x2 windows stride 2: the padded -inf never wins over -5
  const std::vector<float> neg = {-5, -6};
  g = {1, 1, 2, 2, 2, 2, 2, 1, 1, 1, 2};
  tg::max_pool2d_reference_forward(neg.data(), g, out.data(), argmax.data());
  CHECK(out == std::vector<float>{-5.f, -6.f});
  CHECK(argmax == std::vector<std::int32_t>{0, 1});
}
