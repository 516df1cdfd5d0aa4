// Grouped and depthwise conv2d (Conv2dOptions::groups): PyTorch fixtures, gradchecks, the depthwise kernel
// (core/kernels/conv2d_depthwise_*.cpp) and the group-by-group path of the other kernels against the plain
// reference kernel, the choice of kernel, and the errors.
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <vector>

#include "conv2d_cases.hpp"
#include "core/kernels/conv2d.hpp"
#include "fixture_runner.hpp"
#include "tapegrad.hpp"
#include "test_util.hpp"

using tg::Array;
using tg::Tensor;
using namespace test_util;

using namespace conv2d_test;

namespace {

// A grouped_conv.json case: inputs x, weight [Cout, Cin/groups, Kh, Kw] and (unless options.bias is false)
// bias; options {"stride", "padding", "dilation", "groups"}.
Tensor run_grouped(const Inputs& t, const Json& c) {
  const Json& o = c.at("options");
  REQUIRE(o.contains("groups"));
  return tg::conv2d(t[0], t[1], t.size() == 3 ? t[2] : Tensor{}, conv2d_options(o));
}

// Depthwise geometries (groups = Cin = Cout): MobileNet's 3x3 stride 1 and 2, and the odd ones.
const std::vector<ConvCase>& depthwise_cases() {
  static const std::vector<ConvCase> all = {
      {"3x3 padding 1 (MobileNet), 16x16", {3, 8, 16, 16}, {8, 1, 3, 3}, {.padding = {1, 1}, .groups = 8}},
      {"3x3 padding 1 stride 2, 16x16",
       {2, 5, 16, 16},
       {5, 1, 3, 3},
       {.stride = {2, 2}, .padding = {1, 1}, .groups = 5}},
      {"3x3 padding 1 stride 2, odd 15x13",
       {2, 3, 15, 13},
       {3, 1, 3, 3},
       {.stride = {2, 2}, .padding = {1, 1}, .groups = 3}},
      {"odd 7x9, no padding", {2, 4, 7, 9}, {4, 1, 3, 3}, {.groups = 4}},
      {"wider than two vectors, 11 rows (not a multiple of the row block)",
       {1, 2, 11, 37},
       {2, 1, 3, 3},
       {.padding = {1, 1}, .groups = 2}},
      {"dilation 2, padding 2",
       {2, 3, 9, 10},
       {3, 1, 3, 3},
       {.padding = {2, 2}, .dilation = {2, 2}, .groups = 3}},
      {"rectangular 2x3 kernel, stride 2x1, padding 1x0",
       {2, 3, 9, 8},
       {3, 1, 2, 3},
       {.stride = {2, 1}, .padding = {1, 0}, .groups = 3}},
      {"5x5, stride 3, dilation 1x2, padding 2x3",
       {1, 2, 14, 17},
       {2, 1, 5, 5},
       {.stride = {3, 3}, .padding = {2, 3}, .dilation = {1, 2}, .groups = 2}},
      {"1x1 with padding larger than the kernel",
       {2, 3, 5, 6},
       {3, 1, 1, 1},
       {.padding = {2, 1}, .groups = 3}},
      {"'same' padding with an even 4x2 kernel",
       {2, 2, 8, 9},
       {2, 1, 4, 2},
       {.padding = tg::kSame, .groups = 2}},
      {"batch 1, one-row output", {1, 6, 3, 20}, {6, 1, 3, 3}, {.stride = {1, 2}, .groups = 6}},
  };
  return all;
}

// The generic grouped path: groups that are not depthwise, and depthwise with a channel multiplier.
const std::vector<ConvCase>& grouped_cases() {
  static const std::vector<ConvCase> all = {
      {"groups 2", {2, 4, 7, 7}, {6, 2, 3, 3}, {.groups = 2}},
      {"groups 4, padding 1", {2, 8, 6, 5}, {8, 2, 3, 3}, {.padding = {1, 1}, .groups = 4}},
      {"groups 2, stride 2, padding 1x0",
       {1, 4, 9, 8},
       {4, 2, 3, 2},
       {.stride = {2, 2}, .padding = {1, 0}, .groups = 2}},
      {"groups 3, dilation 2",
       {2, 6, 9, 9},
       {9, 2, 3, 3},
       {.padding = {2, 2}, .dilation = {2, 2}, .groups = 3}},
      {"channel multiplier 2 (groups = Cin, Cout = 2 Cin)",
       {2, 3, 7, 7},
       {6, 1, 3, 3},
       {.padding = {1, 1}, .groups = 3}},
      {"depthwise through the generic path",
       {2, 4, 8, 8},
       {4, 1, 3, 3},
       {.stride = {2, 2}, .padding = {1, 1}, .groups = 4}},
      {"groups 2, 32 output channels, batch 1",
       {1, 4, 9, 11},
       {32, 2, 3, 3},
       {.padding = {1, 1}, .groups = 2}},
  };
  return all;
}

// The op (whichever kernel conv2d_kernel picks under the current algorithm) against the reference: the
// forward with and without bias, and dx, dweight, dbias.
void check_op(const ConvCase& c, const ConvExpected& e) {
  const ClearTapeOnExit clear_tape;
  auto tensor = [](const tg::Shape& shape, const Buffer& data) {
    Array a = Array::from_shape(shape);
    std::copy(data.begin(), data.end(), a.begin());
    return Tensor(std::move(a), true);
  };
  const Tensor x = tensor(c.x, e.x), w = tensor(c.w, e.w), b = tensor({e.g.c_out}, e.b);
  Tensor y = tg::conv2d(x, w, b, c.options);
  check_close(values_of(y.value()), e.out, "forward with bias");
  check_close(values_of(tg::conv2d(x, w, Tensor{}, c.options).value()), e.out_no_bias,
              "forward without bias");
  Array upstream = Array::from_shape(y.shape());
  std::copy(e.dout.begin(), e.dout.end(), upstream.begin());
  y.backward(upstream);
  check_close(values_of(x.grad()), e.dx, "dx");
  check_close(values_of(w.grad()), e.dw, "dweight");
  check_close(values_of(b.grad()), e.db, "dbias");
}

}  // namespace

// ---- PyTorch and gradcheck -------------------------------------------------------------------------------

PYTORCH_TEST_CASE("conv2d",
                  "groups 2 and 4, depthwise (stride 2, dilation 2, padding), channel multiplier 2") {
  for (const tg::ConvAlgorithm algorithm :
       {tg::ConvAlgorithm::Auto, tg::ConvAlgorithm::Im2col, tg::ConvAlgorithm::Direct}) {
    INFO("conv algorithm ", static_cast<int>(algorithm));
    const ScopedConvAlgorithm forced(algorithm);
    check_pytorch_cases(kGroupedConv, op, run_grouped, {}, {"x", "weight", "bias"});
  }
}

GRADCHECK_TEST_CASE("conv2d", "grouped (groups 2, stride 2) and depthwise (padding, dilation, multiplier)") {
  const std::vector<ConvCase> cases = {
      {"groups 2", {2, 4, 5, 5}, {4, 2, 3, 3}, {.groups = 2}},
      {"groups 2, stride 2, padding 1",
       {1, 4, 6, 5},
       {2, 2, 2, 3},
       {.stride = {2, 2}, .padding = {1, 1}, .groups = 2}},
      {"depthwise, padding 1", {2, 3, 5, 5}, {3, 1, 3, 3}, {.padding = {1, 1}, .groups = 3}},
      {"depthwise, stride 2, dilation 2",
       {1, 2, 7, 7},
       {2, 1, 3, 3},
       {.stride = {2, 2}, .padding = {2, 1}, .dilation = {2, 2}, .groups = 2}},
      {"channel multiplier 2", {1, 2, 5, 5}, {4, 1, 3, 3}, {.padding = {1, 1}, .groups = 2}},
  };
  for (const ConvCase& c : cases) {
    INFO(c.name);
    const auto opts = c.options;
    check_gradients([opts](const Inputs& in) { return tg::conv2d(in[0], in[1], in[2], opts); },
                    {param(c.x, 1), param(c.w, 2), param({c.w[0]}, 3)});
    check_gradients([opts](const Inputs& in) { return tg::conv2d(in[0], in[1], Tensor{}, opts); },
                    {param(c.x, 4), param(c.w, 5)});
  }
}

// ---- kernels against the definition ----------------------------------------------------------------------

TEST_CASE("conv2d's depthwise kernel agrees with the reference, forward and backward, each gradient alone") {
  for (const ConvCase& c : depthwise_cases()) {
    INFO(c.name, ": x ", tg::shape_str(c.x), " w ", tg::shape_str(c.w));
    const ConvExpected e = conv_reference(c);
    const tg::Conv2dGeometry& g = e.g;
    REQUIRE(tg::conv2d_depthwise_applies(g));
    Buffer out = poisoned(e.out.size());
    tg::conv2d_depthwise_forward(e.x.data(), e.w.data(), e.b.data(), g, out.data());
    check_close(out, e.out, "forward with bias");
    out = poisoned(e.out.size());
    tg::conv2d_depthwise_forward(e.x.data(), e.w.data(), nullptr, g, out.data());
    check_close(out, e.out_no_bias, "forward without bias");

    Buffer dx = poisoned(e.dx.size()), dw = poisoned(e.dw.size()), db = poisoned(e.db.size());
    tg::conv2d_depthwise_backward(e.dout.data(), e.x.data(), e.w.data(), g, dx.data(), dw.data(), db.data());
    check_close(dx, e.dx, "dx");
    check_close(dw, e.dw, "dweight");
    check_close(db, e.db, "dbias");
    dx = poisoned(e.dx.size()), dw = poisoned(e.dw.size()), db = poisoned(e.db.size());
    tg::conv2d_depthwise_backward(e.dout.data(), e.x.data(), e.w.data(), g, dx.data(), nullptr, nullptr);
    check_close(dx, e.dx, "dx alone");
    tg::conv2d_depthwise_backward(e.dout.data(), e.x.data(), e.w.data(), g, nullptr, dw.data(), nullptr);
    check_close(dw, e.dw, "dweight alone");
    tg::conv2d_depthwise_backward(e.dout.data(), e.x.data(), e.w.data(), g, nullptr, nullptr, db.data());
    check_close(db, e.db, "dbias alone");
  }
}

TEST_CASE("conv2d's depthwise kernel gives the same results on 1 thread and on 2") {
  const ConvExpected e = conv_reference(depthwise_cases()[0]);
  std::vector<Buffer> runs;
  for (const int threads : {1, 2}) {
    const ScopedNumThreads scoped(threads);
    Buffer dw(e.dw.size()), db(e.db.size());
    tg::conv2d_depthwise_backward(e.dout.data(), e.x.data(), e.w.data(), e.g, nullptr, dw.data(), db.data());
    dw.insert(dw.end(), db.begin(), db.end());
    runs.push_back(dw);
  }
  CHECK(runs[0] == runs[1]);
}

TEST_CASE("conv2d runs grouped convs group by group with every kernel family, as the reference") {
  for (const tg::ConvAlgorithm algorithm :
       {tg::ConvAlgorithm::Auto, tg::ConvAlgorithm::Im2col, tg::ConvAlgorithm::Direct}) {
    const ScopedConvAlgorithm forced(algorithm);
    for (const ConvCase& c : grouped_cases()) {
      INFO("algorithm ", static_cast<int>(algorithm), ", ", c.name, ": x ", tg::shape_str(c.x), " w ",
           tg::shape_str(c.w));
      check_op(c, conv_reference(c));
    }
  }
  const ScopedConvAlgorithm automatic(tg::ConvAlgorithm::Auto);
  for (const ConvCase& c : depthwise_cases()) {  // the op on the depthwise kernel
    INFO(c.name);
    check_op(c, conv_reference(c));
  }
}

TEST_CASE("the reference kernel with groups is the sum of per-group convs") {
  // groups 2 of x [1, 4, 5, 5], w [2, 2, 3, 3]: output channel o sees input channels 2o, 2o + 1 only.
  const ConvExpected e = conv_reference({"groups 2", {1, 4, 5, 5}, {2, 2, 3, 3}, {.groups = 2}});
  const tg::Conv2dGeometry one = tg::conv2d_geometry({1, 2, 5, 5}, {1, 2, 3, 3}, {});
  for (std::size_t group = 0; group < 2; ++group) {
    Buffer out(9);
    tg::conv2d_reference_forward(e.x.data() + group * 50, e.w.data() + group * 18, e.b.data() + group, one,
                                 out.data());
    check_close(out,
                Buffer(e.out.begin() + static_cast<std::ptrdiff_t>(group * 9),
                       e.out.begin() + static_cast<std::ptrdiff_t>(group * 9 + 9)),
                "one group");
  }
}

TEST_CASE("conv2d_kernel picks the depthwise kernel for groups = Cin = Cout only, unless another is forced") {
  const tg::Conv2dGeometry depthwise = tg::conv2d_geometry({1, 4, 8, 8}, {4, 1, 3, 3}, {.groups = 4});
  const tg::Conv2dGeometry multiplier = tg::conv2d_geometry({1, 4, 8, 8}, {8, 1, 3, 3}, {.groups = 4});
  const tg::Conv2dGeometry grouped = tg::conv2d_geometry({1, 4, 8, 8}, {4, 2, 3, 3}, {.groups = 2});
  const tg::Conv2dGeometry one_channel = tg::conv2d_geometry({1, 1, 8, 8}, {1, 1, 3, 3}, {});
  {
    const ScopedConvAlgorithm guard(tg::ConvAlgorithm::Auto);
    CHECK(tg::conv2d_kernel(depthwise) == tg::Conv2dKernel::Depthwise);
    CHECK(tg::conv2d_kernel(multiplier) == tg::Conv2dKernel::Direct);
    CHECK(tg::conv2d_kernel(grouped) == tg::Conv2dKernel::Direct);
    CHECK(tg::conv2d_kernel(one_channel) == tg::Conv2dKernel::Direct);
  }
  const ScopedConvAlgorithm guard(tg::ConvAlgorithm::Im2col);
  CHECK(tg::conv2d_kernel(depthwise) == tg::Conv2dKernel::Im2col);
}

// ---- errors ----------------------------------------------------------------------------------------------

TEST_CASE("conv2d rejects groups that do not fit the channels, naming conv2d, groups and the shapes") {
  const Tensor x = param({2, 32, 8, 8}, 1);
  CHECK_THROWS_WITH_AS(tg::conv2d(x, param({32, 32, 3, 3}, 2), Tensor{}, {.groups = 0}),
                       "conv2d: groups must be >= 1, got 0", tg::Error);
  CHECK_THROWS_WITH_AS(
      tg::conv2d(x, param({30, 10, 3, 3}, 2), Tensor{}, {.groups = 3}),
      "conv2d: groups=3 does not divide the 32 input channels: input [2, 32, 8, 8], weight [30, 10, 3, 3]",
      tg::Error);
  CHECK_THROWS_WITH_AS(
      tg::conv2d(x, param({6, 8, 3, 3}, 2), Tensor{}, {.groups = 4}),
      "conv2d: groups=4 does not divide the 6 output channels: input [2, 32, 8, 8], weight [6, 8, 3, 3]",
      tg::Error);
  CHECK_THROWS_WITH_AS(
      tg::conv2d(x, param({8, 16, 3, 3}, 2), Tensor{}, {.groups = 4}),
      "conv2d: with groups=4 each filter sees 8 of the 32 input channels, but weight has 16: "
      "input [2, 32, 8, 8], weight [8, 16, 3, 3]",
      tg::Error);
  CHECK_THROWS_WITH_AS(tg::conv2d(x, param({32, 1, 3, 3}, 2), param({16}, 3), {.groups = 32}),
                       "conv2d: expected bias [32] for weight [32, 1, 3, 3], got [16]", tg::Error);
}
