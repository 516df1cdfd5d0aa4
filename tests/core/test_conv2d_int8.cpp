// The int8 conv kernels (core/kernels/conv2d_int8.cpp) against the plain definition run on the same quantized
// values: with scale 1 the output is the integer sum itself, so the VNNI kernels and the plain C++ fallback
// must both equal a 64-bit integer seven-loop conv exactly, for dense, strided, dilated, grouped and
// depthwise geometries. Then the float parts: quantization (rounding, clamping, NaN), the scales, bias,
// residual and activations, against the fp32 reference conv of the dequantized values.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "conv2d_cases.hpp"
#include "core/base/error.hpp"
#include "core/kernels/conv2d_int8.hpp"
#include "core/runtime/random.hpp"
#include "core/runtime/threads.hpp"

using namespace conv2d_test;

namespace {

const std::vector<ConvCase>& int8_cases() {
  static const std::vector<ConvCase> all = {
      {"lenet conv1 (one input channel, padding 2)", {2, 1, 28, 28}, {6, 1, 5, 5}, {.padding = {2, 2}}},
      {"3 -> 16, padding 1 (a partial quad)", {3, 3, 9, 11}, {16, 3, 3, 3}, {.padding = {1, 1}}},
      {"odd channel counts 17 -> 19", {2, 17, 7, 8}, {19, 17, 3, 3}, {.padding = {1, 1}}},
      {"1x1 kernel", {3, 8, 6, 6}, {9, 8, 1, 1}, {}},
      {"stride 2, padding 1", {2, 16, 9, 10}, {32, 16, 3, 3}, {.stride = {2, 2}, .padding = {1, 1}}},
      {"1x1 stride 2 (a shortcut)", {2, 16, 8, 8}, {32, 16, 1, 1}, {.stride = {2, 2}}},
      {"dilation and rectangular padding",
       {2, 5, 11, 10},
       {3, 5, 3, 2},
       {.padding = {2, 1}, .dilation = {2, 3}}},
      {"'same' padding with an even kernel", {2, 4, 8, 9}, {5, 4, 4, 2}, {.padding = tg::kSame}},
      {"groups 2, 6 channels a group", {2, 12, 7, 7}, {8, 6, 3, 3}, {.padding = {1, 1}, .groups = 2}},
      {"groups 3, 3 channels a group (groups straddle quads)", {2, 9, 6, 6}, {6, 3, 3, 3}, {.groups = 3}},
      {"depthwise 3x3", {2, 24, 8, 8}, {24, 1, 3, 3}, {.padding = {1, 1}, .groups = 24}},
      {"depthwise 3x3 stride 2",
       {1, 13, 9, 9},
       {13, 1, 3, 3},
       {.stride = {2, 2}, .padding = {1, 1}, .groups = 13}},
      {"depthwise 5x5, dilation 2 (two quads of taps a row)",
       {2, 6, 20, 19},
       {6, 1, 5, 5},
       {.padding = {3, 4}, .dilation = {2, 2}, .groups = 6}},
      {"depthwise 3x3, rows longer than a load",
       {1, 4, 5, 70},
       {4, 1, 3, 3},
       {.padding = {1, 1}, .groups = 4}},
      {"batch 1, resnet20 stage 3", {1, 64, 8, 8}, {64, 64, 3, 3}, {.padding = {1, 1}}},
      {"many images", {9, 16, 12, 12}, {16, 16, 3, 3}, {.padding = {1, 1}}},
  };
  return all;
}

// Integers as floats: activations in [lo, lo + 255] (zero point -lo), weights in [-127, 127].
std::vector<float> integers(std::size_t n, int lo, int hi, std::uint64_t seed) {
  tg::Generator gen(seed);
  std::vector<float> v(n);
  for (float& f : v) f = std::floor(gen.uniform(static_cast<float>(lo), static_cast<float>(hi) + 0.999f));
  return v;
}

// The conv of integer-valued x and w, summed in 64-bit integers.
std::vector<float> integer_conv(const std::vector<float>& x, const std::vector<float>& w,
                                const tg::Conv2dGeometry& g) {
  std::vector<float> out(g.batch * g.c_out * g.pixels_out());
  const std::size_t cig = g.c_in / g.groups, cog = g.c_out / g.groups;
  for (std::size_t n = 0; n < g.batch; ++n)
    for (std::size_t o = 0; o < g.c_out; ++o)
      for (std::size_t oy = 0; oy < g.h_out; ++oy)
        for (std::size_t ox = 0; ox < g.w_out; ++ox) {
          std::int64_t sum = 0;
          for (std::size_t ci = 0; ci < cig; ++ci) {
            const std::size_t c = o / cog * cig + ci;
            for (std::size_t ky = 0; ky < g.kh; ++ky)
              for (std::size_t kx = 0; kx < g.kw; ++kx) {
                const auto iy = static_cast<std::ptrdiff_t>(oy * g.stride_h + ky * g.dilation_h) -
                                static_cast<std::ptrdiff_t>(g.pad_top);
                const auto ix = static_cast<std::ptrdiff_t>(ox * g.stride_w + kx * g.dilation_w) -
                                static_cast<std::ptrdiff_t>(g.pad_left);
                if (iy < 0 || ix < 0 || iy >= static_cast<std::ptrdiff_t>(g.h) ||
                    ix >= static_cast<std::ptrdiff_t>(g.w))
                  continue;
                const float xv = x[((n * g.c_in + c) * g.h + static_cast<std::size_t>(iy)) * g.w +
                                   static_cast<std::size_t>(ix)];
                const float wv = w[((o * cig + ci) * g.kh + ky) * g.kw + kx];
                sum += static_cast<std::int64_t>(xv) * static_cast<std::int64_t>(wv);
              }
          }
          out[((n * g.c_out + o) * g.h_out + oy) * g.w_out + ox] = static_cast<float>(sum);
        }
  return out;
}

struct FallbackGuard {
  explicit FallbackGuard(bool on) { tg::force_int8_fallback(on); }
  ~FallbackGuard() { tg::force_int8_fallback(false); }
};

void check_equal(const std::vector<float>& got, const std::vector<float>& want, const char* what) {
  INFO(what);
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (got[i] != want[i]) {
      FAIL_CHECK("element ", i, " of ", want.size(), ": got ", got[i], ", expected ", want[i]);
      return;
    }
  }
}

}  // namespace

TEST_CASE("conv2d_int8: the integer sums equal the plain definition's, VNNI and fallback alike") {
  for (const ConvCase& c : int8_cases()) {
    for (int zp : {0, 128, 37}) {
      CAPTURE(c.name);
      CAPTURE(zp);
      const tg::Conv2dGeometry g = tg::conv2d_geometry(c.x, c.w, c.options);
      // x = q - zp exactly, q in [0, 255]; scale 1.
      const std::vector<float> x = integers(g.batch * g.c_in * g.h * g.w, -zp, 255 - zp, 11);
      const std::vector<float> wf = integers(g.c_out * g.patch(), -127, 127, 12);
      std::vector<std::int8_t> wq(wf.size());
      for (std::size_t i = 0; i < wf.size(); ++i) wq[i] = static_cast<std::int8_t>(wf[i]);
      const std::vector<float> ones(g.c_out, 1.f);
      const tg::Conv2dInt8Weights w = tg::pack_conv2d_int8(wq.data(), ones.data(), g);
      const std::vector<float> want = integer_conv(x, wf, g);
      for (bool fallback : {false, true}) {
        CAPTURE(fallback);
        const FallbackGuard guard(fallback);
        std::vector<float> out = poisoned(want.size());
        const std::size_t clipped = tg::conv2d_int8_forward(x.data(), w, g, {1.f, zp}, {}, out.data());
        CHECK(clipped == 0);
        check_equal(out, want, fallback ? "plain C++" : "VNNI where the CPU has it");
      }
    }
  }
}

TEST_CASE("conv2d_int8: multithreaded batches give the same bits as one thread") {
  const ConvCase c{"", {7, 16, 10, 10}, {24, 16, 3, 3}, {.padding = {1, 1}}};
  const tg::Conv2dGeometry g = tg::conv2d_geometry(c.x, c.w, c.options);
  const Buffer x = random_buffer(g.batch * g.c_in * g.h * g.w, 5), wf = random_buffer(g.c_out * g.patch(), 6);
  const tg::Conv2dInt8Weights w = tg::pack_conv2d_int8(wf.data(), g);
  const int threads = tg::num_threads();
  Buffer one = poisoned(g.batch * g.c_out * g.pixels_out()), many = one;
  tg::set_num_threads(1);
  tg::conv2d_int8_forward(x.data(), w, g, {1.f / 127, 128}, {}, one.data());
  tg::set_num_threads(3);
  tg::conv2d_int8_forward(x.data(), w, g, {1.f / 127, 128}, {}, many.data());
  tg::set_num_threads(threads);
  check_equal(many, one, "3 threads against 1");
}

TEST_CASE(
    "conv2d_int8: scales, bias, residual and activations against the fp32 conv of the dequantized values") {
  for (const ConvCase& c : int8_cases()) {
    CAPTURE(c.name);
    const tg::Conv2dGeometry g = tg::conv2d_geometry(c.x, c.w, c.options);
    const Buffer x = random_buffer(g.batch * g.c_in * g.h * g.w, 7);
    const Buffer wf = random_buffer(g.c_out * g.patch(), 8), bias = random_buffer(g.c_out, 9);
    const std::size_t out_size = g.batch * g.c_out * g.pixels_out();
    const Buffer residual = random_buffer(out_size, 10);
    const tg::Int8Quant in{2.f / 255, 128};  // x in [-1, 1]
    const tg::Conv2dInt8Weights w = tg::pack_conv2d_int8(wf.data(), g);
    // The dequantized operands: what the integer sums stand for.
    Buffer xd(x.size()), wd(wf.size());
    for (std::size_t i = 0; i < x.size(); ++i)
      xd[i] =
          in.scale * static_cast<float>(tg::quantize_u8(x[i], 1.f / in.scale, in.zero_point) - in.zero_point);
    const std::size_t row = g.patch();
    for (std::size_t o = 0; o < g.c_out; ++o) {
      CHECK(w.scale[o] > 0.f);
      for (std::size_t i = 0; i < row; ++i) {
        const float q = std::nearbyint(wf[o * row + i] / w.scale[o]);
        CHECK(std::abs(q) <= 127.f);
        wd[o * row + i] = w.scale[o] * q;
      }
    }
    Buffer ref = poisoned(out_size);
    tg::conv2d_reference_forward(xd.data(), wd.data(), bias.data(), g, ref.data());
    for (tg::ConvActivation act :
         {tg::ConvActivation::None, tg::ConvActivation::ReLU, tg::ConvActivation::ReLU6}) {
      Buffer want(out_size);
      for (std::size_t i = 0; i < out_size; ++i) {
        float v = ref[i] + residual[i];
        if (act == tg::ConvActivation::ReLU) v = std::max(v, 0.f);
        if (act == tg::ConvActivation::ReLU6) v = std::min(std::max(v, 0.f), 6.f);
        want[i] = v;
      }
      Buffer out = poisoned(out_size);
      tg::conv2d_int8_forward(x.data(), w, g, in, {bias.data(), residual.data(), act}, out.data());
      check_close(out, want, "int8 against fp32 on the same quantized values");
    }
  }
}

TEST_CASE(
    "quantize_u8: rounds to nearest even, clamps to [0, 255], NaN to 0; the kernels count the clipped") {
  CHECK(tg::quantize_u8(0.f, 1.f, 0) == 0);
  CHECK(tg::quantize_u8(2.5f, 1.f, 0) == 2);  // halfway: to even
  CHECK(tg::quantize_u8(3.5f, 1.f, 0) == 4);
  CHECK(tg::quantize_u8(-0.4f, 1.f, 0) == 0);
  CHECK(tg::quantize_u8(-7.f, 1.f, 0) == 0);  // clamped
  CHECK(tg::quantize_u8(300.f, 1.f, 0) == 255);
  CHECK(tg::quantize_u8(-1.f, 1.f, 128) == 127);
  CHECK(tg::quantize_u8(1.f, 0.5f, 10) == 10);  // 1 * 0.5 = 0.5: to even, 0
  CHECK(tg::quantize_u8(std::numeric_limits<float>::quiet_NaN(), 1.f, 5) == 0);
  CHECK(tg::quantize_u8(std::numeric_limits<float>::infinity(), 1.f, 5) == 255);
  CHECK(tg::quantize_u8(-std::numeric_limits<float>::infinity(), 1.f, 5) == 0);

  // The kernels quantize the same way (VNNI and fallback): a 1x1 conv with weight 1 returns q - zp.
  const tg::Conv2dGeometry g = tg::conv2d_geometry({1, 1, 1, 21}, {1, 1, 1, 1}, {});
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  const Buffer x = {0.f,   2.5f,   3.5f,   -0.4f,   -7.f, 300.f, nan,    inf,     -inf, 1.5f, -1.5f,
                    127.f, -128.f, 127.6f, -128.6f, 0.5f, -0.5f, 126.5f, -127.5f, 7.f,  200.f};
  const std::int8_t one = 1;
  const float unit = 1.f;
  const tg::Conv2dInt8Weights w = tg::pack_conv2d_int8(&one, &unit, g);
  for (bool fallback : {false, true}) {
    CAPTURE(fallback);
    const FallbackGuard guard(fallback);
    Buffer out = poisoned(x.size());
    const std::size_t clipped = tg::conv2d_int8_forward(x.data(), w, g, {1.f, 128}, {}, out.data());
    for (std::size_t i = 0; i < x.size(); ++i) {
      CAPTURE(x[i]);
      CHECK(out[i] == static_cast<float>(tg::quantize_u8(x[i], 1.f, 128)) - 128.f);
    }
    // Clipped beyond rounding (outside [-128.5, 127.5]): 300, inf, -inf, 127.6, -128.6 and 200.
    CHECK(clipped == 6);
  }
}

TEST_CASE("linear_int8: the integer sums equal the plain definition's, VNNI and fallback alike") {
  struct Case {
    std::size_t batch, in, out;
  };
  for (const Case c : {Case{1, 3, 5}, Case{1, 400, 120}, Case{2, 17, 16}, Case{7, 37, 70}, Case{13, 301, 10},
                       Case{1, 3136, 128}}) {
    for (int zp : {0, 128, 201}) {
      CAPTURE(c.batch);
      CAPTURE(c.in);
      CAPTURE(c.out);
      CAPTURE(zp);
      const std::vector<float> x = integers(c.batch * c.in, -zp, 255 - zp, 21);
      const std::vector<float> wf = integers(c.out * c.in, -127, 127, 22);
      std::vector<std::int8_t> wq(wf.size());
      for (std::size_t i = 0; i < wf.size(); ++i) wq[i] = static_cast<std::int8_t>(wf[i]);
      const std::vector<float> ones(c.out, 1.f);
      const tg::LinearInt8Weights w = tg::pack_linear_int8(wq.data(), ones.data(), c.out, c.in);
      std::vector<float> want(c.batch * c.out);
      for (std::size_t n = 0; n < c.batch; ++n)
        for (std::size_t o = 0; o < c.out; ++o) {
          std::int64_t sum = 0;
          for (std::size_t k = 0; k < c.in; ++k)
            sum += static_cast<std::int64_t>(x[n * c.in + k]) * static_cast<std::int64_t>(wf[o * c.in + k]);
          want[n * c.out + o] = static_cast<float>(sum);
        }
      for (bool fallback : {false, true}) {
        CAPTURE(fallback);
        const FallbackGuard guard(fallback);
        std::vector<float> out = poisoned(want.size());
        CHECK(tg::linear_int8_forward(x.data(), c.batch, w, {1.f, zp}, nullptr, tg::ConvActivation::None,
                                      out.data()) == 0);
        check_equal(out, want, fallback ? "plain C++" : "VNNI where the CPU has it");
      }
    }
  }
}

TEST_CASE("linear_int8: scales, bias and activations against the fp32 product of the dequantized values") {
  const std::size_t batch = 5, in = 50, out = 33;
  const Buffer x = random_buffer(batch * in, 31), wf = random_buffer(out * in, 32),
               bias = random_buffer(out, 33);
  const tg::Int8Quant q{2.f / 255, 128};
  const tg::LinearInt8Weights w = tg::pack_linear_int8(wf.data(), out, in);
  for (tg::ConvActivation act :
       {tg::ConvActivation::None, tg::ConvActivation::ReLU, tg::ConvActivation::ReLU6}) {
    Buffer got = poisoned(batch * out);
    tg::linear_int8_forward(x.data(), batch, w, q, bias.data(), act, got.data());
    Buffer want(batch * out);
    for (std::size_t n = 0; n < batch; ++n)
      for (std::size_t o = 0; o < out; ++o) {
        double sum = bias[o];
        for (std::size_t k = 0; k < in; ++k) {
          const float xd =
              q.scale *
              static_cast<float>(tg::quantize_u8(x[n * in + k], 1.f / q.scale, q.zero_point) - q.zero_point);
          const float wd = w.scale[o] * std::nearbyint(wf[o * in + k] / w.scale[o]);
          sum += double(xd) * double(wd);
        }
        float v = static_cast<float>(sum);
        if (act != tg::ConvActivation::None) v = std::max(v, 0.f);
        if (act == tg::ConvActivation::ReLU6) v = std::min(v, 6.f);
        want[n * out + o] = v;
      }
    check_close(got, want, "linear int8 against fp32 on the same quantized values");
  }
}

TEST_CASE("conv2d_int8: bad scales and mismatched weights are tg::Errors") {
  const tg::Conv2dGeometry g = tg::conv2d_geometry({1, 4, 5, 5}, {8, 4, 3, 3}, {});
  const Buffer x(100, 0.f), wf = random_buffer(8 * 36, 3);
  const tg::Conv2dInt8Weights w = tg::pack_conv2d_int8(wf.data(), g);
  Buffer out(8 * 9);
  CHECK_THROWS_AS(tg::conv2d_int8_forward(x.data(), w, g, {0.f, 0}, {}, out.data()), tg::Error);
  CHECK_THROWS_AS(tg::conv2d_int8_forward(x.data(), w, g, {1.f, 256}, {}, out.data()), tg::Error);
  const tg::Conv2dGeometry other = tg::conv2d_geometry({1, 4, 5, 5}, {8, 4, 1, 1}, {});
  CHECK_THROWS_AS(tg::conv2d_int8_forward(x.data(), w, other, {1.f, 0}, {}, out.data()), tg::Error);
}

TEST_CASE("conv2d_int8: depthwise convs take the VBMI kernel where the CPU has it, not otherwise") {
  const tg::Conv2dGeometry dw =
      tg::conv2d_geometry({1, 8, 6, 6}, {8, 1, 3, 3}, {.padding = {1, 1}, .groups = 8});
  const tg::Conv2dGeometry dense = tg::conv2d_geometry({1, 8, 6, 6}, {8, 8, 3, 3}, {.padding = {1, 1}});
  CHECK_FALSE(tg::conv2d_int8_depthwise_applies(dense));
  CHECK(tg::conv2d_int8_depthwise_applies(dw) ==
        (tg::int8_vnni_supported() && __builtin_cpu_supports("avx512vbmi")));
  const FallbackGuard guard(true);
  CHECK_FALSE(tg::conv2d_int8_depthwise_applies(dw));
}

TEST_CASE("int8_vnni_supported: force_int8_fallback hides VNNI and says so") {
  {
    const FallbackGuard guard(true);
    CHECK_FALSE(tg::int8_vnni_supported());
    CHECK(tg::int8_vnni_unsupported_reason().find("force_int8_fallback") != std::string::npos);
  }
  // On this machine (AVX512_VNNI) the kernels run vpdpbusd; elsewhere the reason names the CPU.
  if (!tg::int8_vnni_supported()) MESSAGE("int8: ", tg::int8_vnni_unsupported_reason());
}
