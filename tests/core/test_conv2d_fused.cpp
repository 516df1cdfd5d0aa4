// Inference passes (core/ops/fused.hpp, docs/fusion.md): conv2d_fused against the ops it fuses (conv2d,
// batch_norm2d in eval mode, add, relu/relu6), each of which has its PyTorch fixtures and gradcheck, for
// every kernel family and split (direct wide and lanes, im2col, depthwise, grouped; batches split by image,
// by output rows and by channels); and models run with fusion on against fusion off.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "tapegrad.hpp"
#include "test_util.hpp"

using namespace test_util;
using tg::Array;
using tg::ConvActivation;
using tg::Shape;
using tg::Tensor;

namespace {

struct FusedCase {
  const char* name;
  Shape x, w;
  tg::Conv2dOptions options;
};

// One geometry per kernel and split; batch 1 with 2 threads splits rows (36x30) or channels (8x8, lanes),
// both over 8M multiply-adds (core/kernels/conv2d_scratch.hpp: smaller convs stay on one thread).
const std::vector<FusedCase> kFusedCases = {
    {"direct wide 6->10 3x3 pad 1, batch 3", {3, 6, 12, 14}, {10, 6, 3, 3}, {.padding = {1, 1}}},
    {"direct wide, batch 1 on one thread", {1, 16, 32, 32}, {16, 16, 3, 3}, {.padding = {1, 1}}},
    {"direct wide, batch 1 split by rows", {1, 32, 36, 30}, {40, 32, 3, 3}, {.padding = {1, 1}}},
    {"direct lanes 64->256 on 8x8, batch 1 split by channels",
     {1, 64, 8, 8},
     {256, 64, 3, 3},
     {.padding = {1, 1}}},
    {"direct lanes, batch 2", {2, 8, 6, 6}, {16, 8, 3, 3}, {.padding = {1, 1}}},
    {"im2col stride 2", {2, 4, 9, 9}, {8, 4, 3, 3}, {.stride = {2, 2}, .padding = {1, 1}}},
    {"1x1 stride 2 (a projection shortcut)", {1, 16, 16, 16}, {32, 16, 1, 1}, {.stride = {2, 2}}},
    {"depthwise", {2, 8, 7, 7}, {8, 1, 3, 3}, {.padding = {1, 1}, .groups = 8}},
    {"grouped", {2, 4, 6, 6}, {6, 2, 3, 3}, {.padding = {1, 1}, .groups = 2}},
};

Tensor fused_value(const Shape& shape, std::uint64_t seed, float lo = -1.f, float hi = 1.f) {
  tg::Generator gen(seed);
  return Tensor(tg::rand_uniform(shape, lo, hi, gen));
}

// conv2d -> batch_norm2d (eval) -> + residual -> activation, as separate ops (the reference).
Tensor unfused_ops(const Tensor& x, const Tensor& w, const Tensor& b, const tg::Conv2dOptions& o,
                   const tg::ConvFollowers& f) {
  Tensor y = tg::conv2d(x, w, b, o);
  if (f.bn_weight.defined()) {
    y = tg::batch_norm2d(
        y, f.bn_weight, f.bn_bias,
        {.eps = f.bn_eps, .training = false, .running_mean = f.bn_mean, .running_var = f.bn_var});
  }
  if (f.residual.defined()) y = y + f.residual;
  if (f.act == ConvActivation::ReLU) y = tg::relu(y);
  if (f.act == ConvActivation::ReLU6) y = tg::relu6(y);
  return y;
}

void check_fused_close(const Array& got, const Array& want, const std::string& what) {
  INFO(what);
  REQUIRE(got.shape() == want.shape());
  double worst = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double diff = std::abs(static_cast<double>(got.data()[i]) - want.data()[i]);
    worst = std::max(worst, diff / (1.0 + std::abs(static_cast<double>(want.data()[i]))));
  }
  CHECK(worst < 1e-5);
}

}  // namespace

TEST_CASE(
    "conv2d_fused equals conv2d, batch_norm2d, add and relu/relu6 run one after another, every kernel") {
  tg::NoGradGuard no_grad;
  const ScopedNumThreads threads(2);
  std::uint64_t seed = 100;
  for (const FusedCase& c : kFusedCases) {
    const Tensor x = fused_value(c.x, ++seed), w = fused_value(c.w, ++seed, -0.3f, 0.3f);
    const std::size_t cout = c.w[0];
    const tg::Conv2dGeometry g = tg::conv2d_geometry(c.x, c.w, c.options);
    const Shape out{g.batch, g.c_out, g.h_out, g.w_out};
    for (int variant = 0; variant < 6; ++variant) {
      tg::ConvFollowers f;
      const bool bias = variant % 2 == 0, bn = variant != 1, residual = variant >= 3;
      if (bn) {
        f.bn_weight = fused_value({cout}, ++seed, 0.5f, 1.5f), f.bn_bias = fused_value({cout}, ++seed);
        f.bn_mean = fused_value({cout}, ++seed), f.bn_var = fused_value({cout}, ++seed, 0.2f, 2.f),
        f.bn_eps = 1e-3f;
      }
      if (residual) f.residual = fused_value(out, ++seed);
      f.act = variant == 2 || variant == 4 ? ConvActivation::ReLU
              : variant == 5               ? ConvActivation::ReLU6
                                           : ConvActivation::None;
      const Tensor b = bias ? fused_value({cout}, ++seed) : Tensor();
      const std::string what = std::string(c.name) + ", variant " + std::to_string(variant);
      check_fused_close(tg::conv2d_fused(x, w, b, c.options, f).value(),
                        unfused_ops(x, w, b, c.options, f).value(), what);
    }
  }
}

TEST_CASE("conv2d_fused gives the same at 1 and 2 threads, and names itself after its parts") {
  tg::NoGradGuard no_grad;
  const Tensor x = fused_value({1, 32, 36, 30}, 1), w = fused_value({40, 32, 3, 3}, 2, -0.3f, 0.3f);
  tg::ConvFollowers f;
  f.bn_weight = fused_value({40}, 3, 0.5f, 1.5f), f.bn_bias = fused_value({40}, 4),
  f.bn_mean = fused_value({40}, 5);
  f.bn_var = fused_value({40}, 6, 0.2f, 2.f), f.residual = fused_value({1, 40, 36, 30}, 7),
  f.act = ConvActivation::ReLU;
  const tg::Conv2dOptions o{.padding = {1, 1}};
  Array one, two;
  {
    const ScopedNumThreads threads(1);
    one = tg::conv2d_fused(x, w, Tensor(), o, f).value();
  }
  {
    const ScopedNumThreads threads(2);
    two = tg::conv2d_fused(x, w, Tensor(), o, f).value();
  }
  CHECK(values_of(one) == values_of(two));  // the same sums in the same order, whichever thread runs them
  CHECK(tg::conv2d_fused(x, w, Tensor(), o, f).name() == "conv2d+batch_norm2d+add+relu");
  CHECK(tg::conv2d_fused(x, w, Tensor(), o, {}).name() == "conv2d");
}

TEST_CASE("conv2d_fused refuses to run where a tape is recorded, and bad followers") {
  const Tensor x = fused_value({1, 2, 5, 5}, 1), w = param({3, 2, 3, 3}, 2);
  {
    const ScopedGradMode grad(true);
    CHECK_THROWS_WITH_AS(tg::conv2d_fused(x, w, Tensor(), {}, {}), doctest::Contains("tg::NoGradGuard"),
                         tg::Error);
  }
  tg::NoGradGuard no_grad;
  tg::ConvFollowers f;
  f.residual = fused_value({1, 3, 5, 5}, 3);  // the output is [1, 3, 3, 3]
  CHECK_THROWS_WITH_AS(
      tg::conv2d_fused(x, w, Tensor(), {}, f),
      doctest::Contains("the residual [1, 3, 5, 5] differs from the conv's output [1, 3, 3, 3]"), tg::Error);
  tg::ConvFollowers bn;
  bn.bn_weight = fused_value({3}, 4), bn.bn_bias = fused_value({3}, 5), bn.bn_mean = fused_value({2}, 6);
  bn.bn_var = fused_value({3}, 7, 0.5f, 1.f);
  CHECK_THROWS_WITH_AS(tg::conv2d_fused(x, w, Tensor(), {}, bn), doctest::Contains("must all be [3]"),
                       tg::Error);
}

// A residual model with every fused shape: conv + bn + relu, conv + bn closing a body (the add and the
// block's relu fused into it), a projection shortcut, relu6, a conv with a bias and no batch norm.
const char* const kFusedModel = R"(conv2d 8 3 padding=1 bias=false
batchnorm2d
relu
residual
  conv2d 8 3 padding=1 bias=false
  batchnorm2d
  relu
  conv2d 8 3 padding=1 bias=false
  batchnorm2d
end
relu
residual
  conv2d 16 3 stride=2 padding=1 bias=false
  batchnorm2d
  relu6
  conv2d 16 3 padding=1 bias=false
  batchnorm2d
shortcut
  conv2d 16 1 stride=2 bias=false
  batchnorm2d
end
relu6
conv2d 16 3 padding=1
relu
globalavgpool2d
flatten
linear 10
)";

TEST_CASE("a model in eval mode gives the same outputs with fusion on and off, and fuses every pass it can") {
  const ScopedSeed seed(3);
  tg::Sequential model = tg::model_from_text(kFusedModel, {3, 16, 16}, 10);
  std::uint64_t s = 50;
  for (auto& [key, buffer] : model.named_buffers()) {  // running statistics away from the defaults
    if (key.find("running_mean") != std::string::npos)
      buffer.value() = fused_value(buffer.shape(), ++s).value();
    if (key.find("running_var") != std::string::npos)
      buffer.value() = fused_value(buffer.shape(), ++s, 0.5f, 2.f).value();
  }
  model.eval();
  const Tensor x = fused_value({2, 3, 16, 16}, 9);
  tg::NoGradGuard no_grad;
  Array unfused_out;
  {
    tg::set_fusion(false);
    unfused_out = model(x).value();
    tg::set_fusion(true);
  }
  const ScopedProfiling profiling(true);
  tg::reset_profile();
  check_fused_close(model(x).value(), unfused_out, "fused model");
  const std::string report = tg::profile_report();
  INFO(report);
  CHECK(report.find("conv2d+batch_norm2d+relu ") != std::string::npos);
  CHECK(report.find("conv2d+batch_norm2d+add+relu ") != std::string::npos);
  CHECK(report.find("conv2d+batch_norm2d+relu6 ") != std::string::npos);
  CHECK(report.find("conv2d+batch_norm2d+add+relu6 ") != std::string::npos);
  CHECK(report.find("conv2d+relu ") != std::string::npos);
  CHECK(report.find("\nbatch_norm2d ") == std::string::npos);  // no batch norm ran on its own
}

TEST_CASE("fusion leaves training and anything that records a tape to the separate ops") {
  const ScopedSeed seed(4);
  tg::Sequential model = tg::model_from_text(kFusedModel, {3, 16, 16}, 10);
  const Tensor x = fused_value({2, 3, 16, 16}, 9);
  const ScopedProfiling profiling(true);
  tg::reset_profile();
  model.eval();
  model(x);  // eval, but gradients recorded: the tape has each op
  {
    tg::NoGradGuard no_grad;
    model.train();  // batch statistics: the batch norms run on their own, the last conv + relu still fuse
    model(x);
  }
  const std::string report = tg::profile_report();
  INFO(report);
  CHECK(report.find("\nbatch_norm2d ") != std::string::npos);
  CHECK(report.find("conv2d+batch_norm2d") == std::string::npos);
  CHECK(report.find("conv2d+relu ") != std::string::npos);
}
