// tg::Int8Model (layers/int8.hpp): calibration and quantization of a model's convs and linears, the int8
// forward against the float32 one (within a few percent of the logits' range, the same class for nearly every
// image), batch norm folded, residual blocks, the fallback's bits, the scope, and what it leaves alone (the
// model's tensors, custom layers in float32, layers not reached).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "custom_layer.hpp"
#include "tapegrad.hpp"

namespace {

tg::Tensor images(std::size_t n, const tg::Shape& chw, std::uint64_t seed, float lo = -1.f, float hi = 2.f) {
  tg::Generator gen(seed);
  tg::Shape shape{n};
  shape.insert(shape.end(), chw.begin(), chw.end());
  tg::Array a = tg::Array::from_shape(shape);
  for (std::size_t i = 0; i < a.size(); ++i) a.data()[i] = gen.uniform(lo, hi);
  return tg::Tensor(std::move(a));
}

// Gives every batch norm running statistics and an affine transform that are not the identity.
void randomize_batch_norms(tg::Sequential& m) {
  tg::Generator gen(99);
  for (auto& [name, t] : m.named_state()) {
    const bool var = name.find("running_var") != std::string::npos;
    const bool bn =
        var || name.find("running_mean") != std::string::npos ||
        (t.dim() == 1 && name.find("bias") == std::string::npos && name.find("weight") != std::string::npos);
    if (!bn) continue;
    for (std::size_t i = 0; i < t.numel(); ++i)
      t.value().data()[i] = var ? gen.uniform(0.5f, 2.f) : gen.uniform(-0.5f, 1.5f);
  }
}

struct Agreement {
  double max_error = 0;   // max |int8 - fp32| / (max - min of the fp32 logits)
  double same_class = 0;  // the share of images whose argmax agrees
};

Agreement compare(const tg::Tensor& fp32, const tg::Tensor& int8) {
  REQUIRE(fp32.shape() == int8.shape());
  const std::size_t n = fp32.shape()[0], k = fp32.shape()[1];
  const float* a = fp32.value().data();
  const float* b = int8.value().data();
  const auto [lo, hi] = std::minmax_element(a, a + n * k);
  Agreement r;
  std::size_t same = 0;
  for (std::size_t i = 0; i < n * k; ++i) r.max_error = std::max(r.max_error, double(std::abs(a[i] - b[i])));
  r.max_error /= double(*hi - *lo);
  for (std::size_t i = 0; i < n; ++i)
    same += std::max_element(a + i * k, a + i * k + k) - (a + i * k) ==
            std::max_element(b + i * k, b + i * k + k) - (b + i * k);
  r.same_class = double(same) / double(n);
  return r;
}

const char* kNet =
    "conv2d 8 3 padding=1\nbatchnorm2d\nrelu\nmaxpool2d 2\n"
    "conv2d 16 3 padding=1 groups=2\nbatchnorm2d\nrelu6\n"
    "conv2d 16 3 padding=1 groups=16\nrelu\n"
    "conv2d 24 3 stride=2\nrelu\nflatten\nlinear 32\nrelu\nlinear classes\n";

}  // namespace

TEST_CASE("Int8Model: a conv net's int8 logits follow its float32 ones; the model's tensors are unchanged") {
  tg::manual_seed(3);
  tg::Sequential model = tg::model_from_text(kNet, {3, 16, 16}, 10, "net.tg");
  randomize_batch_norms(model);
  model.eval();
  std::vector<tg::Array> before;
  for (const auto& [name, t] : model.named_state()) before.push_back(t.value());

  const tg::Tensor calibration = images(64, {3, 16, 16}, 1);
  tg::Int8Model q(model, calibration, 16);
  const tg::Tensor x = images(200, {3, 16, 16}, 2);
  tg::Tensor fp32;
  {
    tg::NoGradGuard no_grad;
    fp32 = model(x);
  }
  const tg::Tensor int8 = q(x);
  const Agreement a = compare(fp32, int8);
  MESSAGE("int8 vs fp32: max error ", a.max_error, " of the logits' range, same class ", a.same_class);
  CHECK(a.max_error < 0.05);
  CHECK(a.max_error > 0.0);  // it really ran in int8
  CHECK(a.same_class >= 0.95);

  // The report: every conv and linear in int8, batch norms folded, zero point 0 after a ReLU.
  const std::vector<tg::Int8LayerReport> r = q.report();
  REQUIRE(r.size() == 6);
  CHECK(r[0].name == "0.Conv2D");
  CHECK(r[0].source == "net.tg:1");
  for (const auto& l : r) {
    CAPTURE(l.name);
    CHECK(l.int8);
    CHECK(l.why.empty());
    CHECK(l.seen > 0);
  }
  CHECK(r[0].folded_batch_norm);
  CHECK(r[0].input.zero_point > 0);  // the image: signed
  CHECK(r[1].name == "4.Conv2D");
  CHECK(r[1].folded_batch_norm);
  CHECK(r[1].input.zero_point == 0);  // after max pool of ReLU
  CHECK_FALSE(r[2].folded_batch_norm);
  CHECK(r[5].name == "14.Linear");
  CHECK(q.int8_bytes() * 3 < q.fp32_bytes());

  std::size_t i = 0;
  for (const auto& [name, t] : model.named_state()) {
    CAPTURE(name);
    CHECK(xt::equal(t.value(), before[i++])());
  }
  // Outside the int8 model, the model is float32 as before.
  tg::NoGradGuard no_grad;
  CHECK(xt::equal(model(x).value(), fp32.value())());
}

TEST_CASE("Int8Model: a Scope runs model(x) in int8; the fallback gives the same bits as VNNI") {
  tg::manual_seed(4);
  tg::Sequential model = tg::model_from_text(kNet, {3, 16, 16}, 10);
  tg::Int8Model q(model, images(32, {3, 16, 16}, 1));
  const tg::Tensor x = images(5, {3, 16, 16}, 2);
  const tg::Tensor direct = q(x);
  tg::NoGradGuard no_grad;
  {
    tg::Int8Model::Scope scope(q);
    CHECK(xt::equal(model(x).value(), direct.value())());
  }
  tg::force_int8_fallback(true);
  const tg::Tensor plain = q(x);
  tg::force_int8_fallback(false);
  CHECK(xt::equal(plain.value(), direct.value())());
}

TEST_CASE("Int8Model: residual blocks (the add and ReLU in the last conv's pass) and batch 1") {
  tg::manual_seed(5);
  tg::Sequential model = tg::model_from_text(
      "conv2d 16 3 padding=1\nbatchnorm2d\nrelu\n"
      "residual\n  conv2d 16 3 padding=1\n  batchnorm2d\n  relu\n  conv2d 16 3 padding=1\n  "
      "batchnorm2d\nend\nrelu\n"
      "residual\n  conv2d 32 3 stride=2 padding=1\n  batchnorm2d\n  relu\n  conv2d 32 3 padding=1\n  "
      "batchnorm2d\n"
      "shortcut\n  conv2d 32 1 stride=2\n  batchnorm2d\nend\nrelu\n"
      "globalavgpool2d\nlinear classes\n",
      {1, 12, 12}, 10);
  randomize_batch_norms(model);
  model.eval();
  tg::Int8Model q(model, images(48, {1, 12, 12}, 1));
  const std::vector<tg::Int8LayerReport> r = q.report();
  REQUIRE(r.size() == 7);
  CHECK(r[1].name == "3.body.0.Conv2D");
  CHECK(r[5].name == "5.shortcut.0.Conv2D");
  for (const auto& l : r) CHECK(l.int8);
  const tg::Tensor x = images(100, {1, 12, 12}, 2);
  tg::Tensor fp32;
  {
    tg::NoGradGuard no_grad;
    fp32 = model(x);
  }
  const Agreement a = compare(fp32, q(x));
  MESSAGE("residual net, int8 vs fp32: max error ", a.max_error, ", same class ", a.same_class);
  CHECK(a.max_error < 0.06);
  CHECK(a.same_class >= 0.9);
  // Batch 1 gives each image's row of the batch.
  const tg::Tensor batch = q(x);
  for (std::size_t n : {0, 37, 99}) {
    tg::Array one = tg::Array::from_shape({1, 1, 12, 12});
    std::copy_n(x.value().data() + n * 144, 144, one.data());
    const tg::Tensor y = q(tg::Tensor(one));
    for (std::size_t c = 0; c < 10; ++c) CHECK(y.value().data()[c] == batch.value().data()[n * 10 + c]);
  }
}

TEST_CASE("Int8Model: a custom layer stays float32 and is listed; saturation is counted; bad calibration") {
  if (!tg::find_layer("prelu")) tg::register_layer("prelu", example::make_prelu);
  tg::manual_seed(6);
  tg::Sequential model = tg::model_from_text("conv2d 8 3\nprelu\nflatten\nlinear classes\n", {1, 8, 8}, 4);
  tg::Int8Model q(model, images(16, {1, 8, 8}, 1, 0.f, 1.f));
  const std::vector<tg::Int8LayerReport> r = q.report();
  REQUIRE(r.size() == 3);
  CHECK(r[2].name == "1.PReLU");
  CHECK_FALSE(r[2].int8);
  CHECK(r[2].why.find("no int8 path") != std::string::npos);
  CHECK(r[0].input.zero_point == 0);  // calibrated on [0, 1]
  // Images beyond the calibrated range: their excess is clipped and counted.
  q(images(4, {1, 8, 8}, 2, -1.f, 3.f));
  CHECK(r[0].clipped == 0);
  const tg::Int8LayerReport after = q.report()[0];
  CHECK(after.clipped_share() > 0.5);
  CHECK(after.clipped_share() < 1.0);

  CHECK_THROWS_AS(tg::Int8Model(model, tg::Tensor(tg::Array::from_shape({0, 1, 8, 8}))), tg::Error);
}

TEST_CASE(
    "Int8Model::release_float_weights: a quarter of the memory, the same int8 outputs, fp32 calls refused") {
  tg::manual_seed(7);
  tg::Sequential model = tg::model_from_text(kNet, {3, 16, 16}, 10);
  tg::Int8Model q(model, images(32, {3, 16, 16}, 1));
  const tg::Tensor x = images(3, {3, 16, 16}, 2);
  const tg::Tensor before = q(x);
  const std::size_t fp32 = q.fp32_bytes();
  const std::size_t freed = q.release_float_weights();
  CHECK(freed > 0);
  CHECK(freed <= fp32);
  CHECK(q.fp32_bytes() == fp32);  // what the float32 layers took, not what is left
  CHECK(xt::equal(q(x).value(), before.value())());
  tg::NoGradGuard no_grad;
  CHECK_THROWS_AS(model(x), tg::Error);  // the float32 path has no weights left
}
