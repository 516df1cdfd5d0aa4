// The bf16 direct conv kernels (core/kernels/conv2d_direct_bf16.cpp) against the plain seven-loop definition
// run on the same bf16-rounded values (x, weight and dout rounded, products accumulated in double): what is
// left is float32 accumulation. And tg::set_precision: the op picks them, and refuses bf16 where the CPU
// cannot run it.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "conv2d_cases.hpp"
#include "core/base/error.hpp"
#include "core/kernels/conv2d.hpp"
#include "core/ops/conv2d.hpp"
#include "core/runtime/precision.hpp"
#include "fixture_runner.hpp"
#include "test_util.hpp"

using namespace conv2d_test;

namespace {

Buffer rounded(const Buffer& b) {
  Buffer r(b.size());
  for (std::size_t i = 0; i < b.size(); ++i) r[i] = tg::from_bf16(tg::to_bf16(b[i]));
  return r;
}

float from_bits(std::uint32_t u) {
  float f = 0.f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// The stride-1 geometries of the fp32 kernels' suite, with odd channel counts (a zero partner in the pairs).
const std::vector<ConvCase>& bf16_cases() {
  static const std::vector<ConvCase> all = {
      {"padding, 13 output channels, 3 input channels", {2, 3, 9, 7}, {13, 3, 3, 3}, {.padding = {1, 0}}},
      {"'same' padding with an even kernel", {2, 2, 8, 9}, {5, 2, 4, 2}, {.padding = tg::kSame}},
      {"dilation and rectangular padding",
       {2, 2, 11, 10},
       {3, 2, 3, 2},
       {.padding = {2, 1}, .dilation = {2, 3}}},
      {"1x1 kernel, odd Cin", {3, 5, 6, 6}, {9, 5, 1, 1}, {}},
      {"1x1 kernel padded by 1 (dx by the scatter form: padding beyond the span)",
       {2, 5, 6, 6},
       {9, 5, 1, 1},
       {.padding = {1, 1}}},
      {"odd channel counts 17 -> 19", {2, 17, 7, 8}, {19, 17, 3, 3}, {.padding = {1, 1}}},
      {"several chunks of images", {12, 8, 32, 32}, {16, 8, 3, 3}, {.padding = {1, 1}}},
      {"lenet conv1 (one input channel)", {3, 1, 28, 28}, {6, 1, 5, 5}, {.padding = {2, 2}}},
      {"resnet20 stage 3", {4, 64, 7, 7}, {64, 64, 3, 3}, {.padding = {1, 1}}},
  };
  return all;
}

}  // namespace

TEST_SUITE("conv2d bf16") {
  TEST_CASE("bf16 rounding: to nearest even, denormals to zero, NaN and infinities kept") {
    CHECK(tg::to_bf16(1.f) == 0x3F80);
    CHECK(tg::to_bf16(from_bits(0x3F808000u)) == 0x3F80);  // halfway, even below: down
    CHECK(tg::to_bf16(from_bits(0x3F818000u)) == 0x3F82);  // halfway, odd below: up
    CHECK(tg::to_bf16(from_bits(0x3F808001u)) == 0x3F81);  // above halfway: up
    CHECK(tg::to_bf16(-2.5f) == 0xC020);
    CHECK(tg::to_bf16(from_bits(0x00400000u)) == 0x0000);  // a denormal: zero
    CHECK(tg::to_bf16(from_bits(0x80400000u)) == 0x8000);  // keeps its sign
    CHECK(tg::to_bf16(std::numeric_limits<float>::infinity()) == 0x7F80);
    CHECK(tg::to_bf16(std::numeric_limits<float>::max()) == 0x7F80);  // rounds up past the largest bf16
    CHECK(std::isnan(tg::from_bf16(tg::to_bf16(std::numeric_limits<float>::quiet_NaN()))));
    CHECK(tg::from_bf16(0x3F82) == 1.015625f);
  }

  TEST_CASE("precision: parsing, and bf16 refused where the CPU has no AVX512_BF16") {
    CHECK(tg::parse_precision("fp32") == tg::Precision::fp32);
    CHECK(tg::parse_precision("bf16") == tg::Precision::bf16);
    CHECK_THROWS_WITH_AS(tg::parse_precision("fp16"), doctest::Contains("fp16 is not supported"), tg::Error);
    CHECK_THROWS_WITH_AS(tg::parse_precision("FP32"), doctest::Contains("expected fp32 or bf16, got 'FP32'"),
                         tg::Error);
    tg::force_bf16_unsupported(true);
    CHECK_FALSE(tg::bf16_supported());
    CHECK_THROWS_WITH_AS(tg::set_precision(tg::Precision::bf16), doctest::Contains("AVX512_BF16"), tg::Error);
    CHECK(tg::precision() == tg::Precision::fp32);
    tg::force_bf16_unsupported(false);
  }

  TEST_CASE("the bf16 direct kernels equal the definition on bf16-rounded values") {
    if (!tg::bf16_supported()) {
      MESSAGE("skipped: ", tg::bf16_unsupported_reason());
      return;
    }
    for (const ConvCase& c : bf16_cases()) {
      SUBCASE(c.name) {
        ConvExpected e = conv_reference(c);
        const tg::Conv2dGeometry& g = e.g;
        const Buffer xr = rounded(e.x), wr = rounded(e.w), dr = rounded(e.dout);
        Buffer ref_out(e.out.size()), ref_dx(e.x.size()), ref_dw(e.w.size()), ref_db(e.b.size());
        tg::conv2d_reference_forward(xr.data(), wr.data(), e.b.data(), g, ref_out.data());
        tg::conv2d_reference_backward(dr.data(), xr.data(), wr.data(), g, ref_dx.data(), ref_dw.data(),
                                      ref_db.data());
        Buffer out = poisoned(e.out.size());
        tg::conv2d_direct_bf16_forward(e.x.data(), e.w.data(), e.b.data(), g, out.data());
        check_close(out, ref_out, "forward");
        Buffer dx = poisoned(e.x.size()), dw = poisoned(e.w.size()), db = poisoned(e.b.size());
        tg::conv2d_direct_bf16_backward(e.dout.data(), e.x.data(), e.w.data(), g, dx.data(), dw.data(),
                                        db.data());
        check_close(dx, ref_dx, "dx");
        check_close(dw, ref_dw, "dweight");
        check_close(db, e.db, "dbias (from the float32 gradient)");
        // Each gradient alone, the others null.
        Buffer dw2 = poisoned(e.w.size());
        tg::conv2d_direct_bf16_backward(e.dout.data(), e.x.data(), e.w.data(), g, nullptr, dw2.data(),
                                        nullptr);
        check_close(dw2, ref_dw, "dweight alone");
        Buffer dx2 = poisoned(e.x.size());
        tg::conv2d_direct_bf16_backward(e.dout.data(), e.x.data(), e.w.data(), g, dx2.data(), nullptr,
                                        nullptr);
        check_close(dx2, ref_dx, "dx alone");
      }
    }
  }

  TEST_CASE("the bf16 kernels round: on unrounded values they differ from float32 by bf16's error") {
    if (!tg::bf16_supported()) {
      MESSAGE("skipped: ", tg::bf16_unsupported_reason());
      return;
    }
    const ConvExpected e = conv_reference(bf16_cases()[5]);
    Buffer out(e.out.size());
    tg::conv2d_direct_bf16_forward(e.x.data(), e.w.data(), e.b.data(), e.g, out.data());
    double worst = 0.0, scale = 0.0;
    for (std::size_t i = 0; i < out.size(); ++i) {
      worst = std::max(worst, std::abs(static_cast<double>(out[i]) - e.out[i]));
      scale = std::max(scale, std::abs(static_cast<double>(e.out[i])));
    }
    CHECK(worst > 1e-4 * scale);  // float32 kernels are within 1e-6 of the definition
    CHECK(worst < 2e-2 * scale);  // 72 products of values with 8-bit mantissas
  }

  TEST_CASE("the vector conversion rounds as to_bf16: a 1x1 conv by 1 of special values") {
    if (!tg::bf16_supported()) {
      MESSAGE("skipped: ", tg::bf16_unsupported_reason());
      return;
    }
    const Buffer x = {1.f,
                      from_bits(0x3F808000u),
                      from_bits(0x3F818000u),
                      from_bits(0x3F808001u),
                      -2.5f,
                      from_bits(0x00400000u),
                      3.0e38f,
                      -7.1234567f,
                      1e-3f,
                      65504.f,
                      0.333333f};
    const tg::Conv2dGeometry g = tg::conv2d_geometry({1, 1, 1, x.size()}, {1, 1, 1, 1}, {});
    const Buffer w = {1.f};
    Buffer out(x.size());
    tg::conv2d_direct_bf16_forward(x.data(), w.data(), nullptr, g, out.data());
    for (std::size_t i = 0; i < x.size(); ++i) {
      INFO("element ", i, " = ", x[i]);
      CHECK(out[i] == tg::from_bf16(tg::to_bf16(x[i])));
    }
  }

  TEST_CASE("under set_precision(bf16) conv2d runs the bf16 kernels, forward and backward") {
    if (!tg::bf16_supported()) {
      MESSAGE("skipped: ", tg::bf16_unsupported_reason());
      return;
    }
    const tg::Conv2dGeometry g = tg::conv2d_geometry({2, 4, 6, 6}, {8, 4, 3, 3}, {.padding = {1, 1}});
    CHECK(tg::conv2d_kernel(g) == tg::Conv2dKernel::Direct);
    {
      tg::PrecisionGuard bf16(tg::Precision::bf16);
      CHECK(tg::conv2d_kernel(g) == tg::Conv2dKernel::DirectBf16);
      const tg::Conv2dGeometry strided = tg::conv2d_geometry({2, 4, 6, 6}, {8, 4, 3, 3}, {.stride = {2, 2}});
      CHECK(tg::conv2d_kernel(strided) == tg::Conv2dKernel::Im2colBf16);
      const tg::Conv2dGeometry depthwise = tg::conv2d_geometry({2, 4, 6, 6}, {4, 1, 3, 3}, {.groups = 4});
      CHECK(tg::conv2d_kernel(depthwise) == tg::Conv2dKernel::Depthwise);  // stays fp32
    }
    CHECK(tg::precision() == tg::Precision::fp32);
    CHECK(tg::conv2d_kernel(g) == tg::Conv2dKernel::Direct);
  }
}

TEST_CASE("detect_anomaly names a bf16 conv whose output overflows") {
  if (!tg::bf16_supported()) {
    MESSAGE("skipped: ", tg::bf16_unsupported_reason());
    return;
  }
  tg::clear_tape();
  const test_util::ClearTapeOnExit clear_tape;
  const test_util::ScopedDetectAnomaly anomaly(true);
  const tg::PrecisionGuard bf16(tg::Precision::bf16);
  tg::Sequential model(tg::Conv2D(2, 4, 3, {.padding = {1, 1}}));
  model.at<tg::Conv2D>(0).weight.value().fill(1e30f);  // 1e30 x 1e10 x 18 products: past float32's 3.4e38
  tg::Array x = tg::Array::from_shape({1, 2, 5, 5});
  x.fill(1e10f);
  CHECK_THROWS_WITH_AS(model(tg::Tensor(x)), doctest::Contains("the output of 'conv2d' in layer 0.Conv2D"),
                       tg::Error);
}

TEST_CASE("bf16 conv2d matches PyTorch: its bf16 rounding exactly, and torch.autocast to bf16 accuracy") {
  if (!tg::bf16_supported()) {
    MESSAGE("skipped: ", tg::bf16_unsupported_reason());
    return;
  }
  const test_util::ClearTapeOnExit clear_tape;
  const tg::PrecisionGuard bf16(tg::Precision::bf16);
  int cases = 0;
  for (const test_util::Json& c : test_util::fixture_cases("bf16_conv.json")) {
    INFO("case ", c.at("name").get<std::string>());
    // x, w and grad_output rounded to bf16 by PyTorch, products summed in float64
    // (tests/gen_fixtures_bf16.py)
    test_util::check_pytorch_case(c, [](const test_util::Inputs& t, const test_util::Json& fc) {
      return tg::conv2d(t[0], t[1], t[2], test_util::conv2d_options(fc.at("options")));
    });
    // torch.autocast's bf16 output (oneDNN rounds the bias and the output to bf16 too): ours is within 2^-6
    // of the output's scale of it everywhere (measured: at most 1.5 x 2^-8).
    tg::Tensor x(test_util::array_of(c.at("inputs")[0])), w(test_util::array_of(c.at("inputs")[1])),
        b(test_util::array_of(c.at("inputs")[2]));
    const tg::Array out = tg::conv2d(x, w, b, test_util::conv2d_options(c.at("options"))).value();
    const std::vector<float> want = c.at("autocast_output").at("data").get<std::vector<float>>();
    REQUIRE(want.size() == out.size());
    float scale = 0.f;
    for (const float v : want) scale = std::max(scale, std::abs(v));
    std::size_t off = 0;
    for (std::size_t i = 0; i < want.size(); ++i)
      off += !(std::abs(out.data()[i] - want[i]) <= scale * 0x1p-6f);
    CHECK(off == 0);
    ++cases;
  }
  CHECK(cases == 4);
}
