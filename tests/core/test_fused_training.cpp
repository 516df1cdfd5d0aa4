// Training fusion (core/ops/fused.hpp, docs/fusion.md): a conv or batch norm computes the ReLU/ReLU6 after it
// in its own pass, recorded as the two ops it fuses with its output not stored. Checked against the same ops
// run one after another (each with its PyTorch fixtures and gradcheck): values, every gradient, the running
// statistics, the tape's entries, reading the unstored output before and after backward(), and whole
// models trained a few steps with fusion on and off.
#include <doctest/doctest.h>

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "tapegrad.hpp"
#include "test_util.hpp"

using namespace test_util;
using tg::ActivationAhead;
using tg::Array;
using tg::ConvActivation;
using tg::Shape;
using tg::Tensor;

namespace {

std::string tape_text() {
  std::ostringstream out;
  tg::print_tape(out);
  return out.str();
}

Tensor random_tensor(const Shape& shape, std::uint64_t seed, bool requires_grad = false) {
  tg::Generator gen(seed);
  return Tensor(tg::rand_uniform(shape, -1.f, 1.f, gen), requires_grad);
}

void check_close(const Array& got, const Array& want, const std::string& what, double tolerance = 1e-5) {
  INFO(what);
  REQUIRE(got.shape() == want.shape());
  double worst = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double diff = std::abs(static_cast<double>(got.data()[i]) - want.data()[i]);
    worst = std::max(worst, diff / (1.0 + std::abs(static_cast<double>(want.data()[i]))));
  }
  CHECK(worst < tolerance);
}

Tensor activation(const Tensor& x, ConvActivation act) {
  return act == ConvActivation::ReLU6 ? tg::relu6(x) : tg::relu(x);
}

// A loss that weighs every output differently, so that every gradient entry matters.
Tensor weighted_sum(const Tensor& y, std::uint64_t seed) {
  return tg::sum(y * random_tensor(y.shape(), seed));
}

struct ConvCase {
  const char* name;
  Shape x, w;
  tg::Conv2dOptions options;
  ConvActivation act;
};

const std::vector<ConvCase> kConvCases = {
    {"direct, relu", {3, 6, 10, 12}, {8, 6, 3, 3}, {.padding = {1, 1}}, ConvActivation::ReLU},
    {"direct, relu6", {2, 4, 9, 9}, {8, 4, 3, 3}, {.padding = {1, 1}}, ConvActivation::ReLU6},
    {"im2col stride 2",
     {2, 4, 9, 9},
     {8, 4, 3, 3},
     {.stride = {2, 2}, .padding = {1, 1}},
     ConvActivation::ReLU},
    {"depthwise", {2, 8, 7, 7}, {8, 1, 3, 3}, {.padding = {1, 1}, .groups = 8}, ConvActivation::ReLU6},
    {"grouped", {2, 4, 6, 6}, {6, 2, 3, 3}, {.padding = {1, 1}, .groups = 2}, ConvActivation::ReLU},
};

}  // namespace

TEST_CASE("a fused conv2d + relu records both ops, equals them run apart, and recomputes the conv's output") {
  const test_util::ClearTapeOnExit clear_tape;
  for (const ConvCase& c : kConvCases) {
    INFO(c.name);
    const std::size_t cout = c.w[0];
    Tensor x = random_tensor(c.x, 1, true), w = random_tensor(c.w, 2, true),
           b = random_tensor({cout}, 3, true);
    Tensor y_ref = activation(tg::conv2d(x, w, b, c.options), c.act);
    weighted_sum(y_ref, 4).backward();
    const Array dx_ref = x.grad(), dw_ref = w.grad(), db_ref = b.grad();
    const Array conv_ref = tg::conv2d(x.detach(), w.detach(), b.detach(), c.options).value();
    x.zero_grad(), w.zero_grad(), b.zero_grad();

    tg::clear_tape();
    ActivationAhead ahead;
    ahead.act = c.act;
    const Tensor conv = tg::conv2d(x, w, b, c.options, ahead);
    REQUIRE(ahead.fused);
    CHECK(conv.node()->unstored);
    CHECK(conv.shape() == conv_ref.shape());  // known without computing it
    const Tensor y = tg::fused_activation(conv, ahead);
    CHECK(tg::tape_size() == 2);
    check_close(y.value(), y_ref.value(), "activation");
    weighted_sum(y, 4).backward();
    check_close(x.grad(), dx_ref, "dx");
    check_close(w.grad(), dw_ref, "dweight");
    check_close(b.grad(), db_ref, "dbias");
    // backward dropped what the conv's output would be recomputed from
    CHECK_THROWS_WITH_AS(conv.value(), doctest::Contains("backward() has run since"), tg::Error);

    // read before backward: recomputed, then kept
    ActivationAhead again;
    again.act = c.act;
    const Tensor conv2 = tg::conv2d(x, w, b, c.options, again);
    const Tensor y2 = tg::fused_activation(conv2, again);
    check_close(conv2.value(), conv_ref, "the conv's recomputed output");
    CHECK_FALSE(conv2.node()->unstored);
    tg::clear_tape();
  }
}

TEST_CASE("a fused batch_norm2d + relu equals the two ops: output, gradients, running statistics") {
  const test_util::ClearTapeOnExit clear_tape;
  for (const ConvActivation act : {ConvActivation::ReLU, ConvActivation::ReLU6}) {
    for (const bool training : {true, false}) {
      INFO("relu6 " << (act == ConvActivation::ReLU6) << ", training " << training);
      const Shape shape{4, 3, 5, 5};
      Tensor x = random_tensor(shape, 5, true);
      x.value() *= 4.f;  // some values past 6 for relu6
      Tensor gamma = random_tensor({3}, 6, true), beta = random_tensor({3}, 7, true);
      auto options = [&](Tensor& mean, Tensor& var) {
        return tg::BatchNorm2dOptions{.training = training, .running_mean = mean, .running_var = var};
      };
      Tensor mean_ref(Array(xt::zeros<float>({3}))), var_ref(Array(xt::ones<float>({3})));
      Tensor y_ref = activation(tg::batch_norm2d(x, gamma, beta, options(mean_ref, var_ref)), act);
      weighted_sum(y_ref, 8).backward();
      const Array dx_ref = x.grad(), dg_ref = gamma.grad(), db_ref = beta.grad();
      x.zero_grad(), gamma.zero_grad(), beta.zero_grad();

      Tensor mean(Array(xt::zeros<float>({3}))), var(Array(xt::ones<float>({3})));
      ActivationAhead ahead;
      ahead.act = act;
      const Tensor bn = tg::batch_norm2d(x, gamma, beta, options(mean, var), ahead);
      REQUIRE(ahead.fused);
      const Tensor y = tg::fused_activation(bn, ahead);
      check_close(y.value(), y_ref.value(), "activation");
      check_close(mean.value(), mean_ref.value(), "running mean");
      check_close(var.value(), var_ref.value(), "running var");
      // the recomputed output is the batch norm's, and reading it does not update the statistics again
      Tensor m2(Array(xt::zeros<float>({3}))), v2(Array(xt::ones<float>({3})));
      const Array bn_ref =
          tg::batch_norm2d(x.detach(), gamma.detach(), beta.detach(), options(m2, v2)).value();
      check_close(bn.value(), bn_ref, "the batch norm's recomputed output");
      check_close(mean.value(), mean_ref.value(), "running mean after the read");
      weighted_sum(y, 8).backward();
      check_close(x.grad(), dx_ref, "dx");
      check_close(gamma.grad(), dg_ref, "dweight");
      check_close(beta.grad(), db_ref, "dbias");
    }
  }
}

TEST_CASE(
    "an unstored output backwards from its shape, and fused_activation takes only the fused op's output") {
  const test_util::ClearTapeOnExit clear_tape;
  Tensor x = random_tensor({2, 3, 6, 6}, 15, true), w = random_tensor({4, 3, 3, 3}, 16, true);
  ActivationAhead ahead;
  ahead.act = ConvActivation::ReLU;
  const Tensor conv = tg::conv2d(x, w, Tensor(), {}, ahead);
  REQUIRE(conv.node()->unstored);
  CHECK(conv.dim() == 4);  // from its shape, without computing it
  CHECK(conv.numel() == 2u * 4u * 4u * 4u);
  CHECK(conv.node()->unstored);
  CHECK(conv.node()->value.size() == 0);  // what a tape observer sees
  CHECK_THROWS_WITH_AS(conv.backward(), doctest::Contains("expected a scalar"), tg::Error);
  // another tensor of the same shape: the activation runs on it, not on the fused values
  const Tensor other = random_tensor(tg::Shape(conv.shape()), 17);
  check_close(tg::fused_activation(other, ahead).value(), tg::relu(other).value(), "relu of another tensor");
  // backward(grad_output) from the unstored output itself
  const Array g = random_tensor(tg::Shape(conv.shape()), 18).value();
  conv.backward(g);
  Tensor x2 = x.detach().set_requires_grad(true), w2 = w.detach().set_requires_grad(true);
  tg::conv2d(x2, w2, Tensor(), {}).backward(g);
  check_close(x.grad(), x2.grad(), "dx");
  check_close(w.grad(), w2.grad(), "dweight");
}

TEST_CASE("nothing is fused where nothing is recorded, and fused_activation then runs the activation") {
  Tensor x = random_tensor({1, 2, 5, 5}, 9), w = random_tensor({3, 2, 3, 3}, 10);
  ActivationAhead ahead;
  ahead.act = ConvActivation::ReLU;
  const Tensor conv = tg::conv2d(x, w, Tensor(), {}, ahead);  // no input requires grad
  CHECK_FALSE(ahead.fused);
  CHECK_FALSE(conv.node()->unstored);
  check_close(tg::fused_activation(conv, ahead).value(), tg::relu(conv).value(), "relu");
}

namespace {

const char* const kTrainModel = R"(conv2d 8 3 padding=1
relu
conv2d 8 3 padding=1 bias=false
batchnorm2d
relu6
residual
  conv2d 8 3 padding=1 bias=false
  batchnorm2d
  relu
  conv2d 8 3 padding=1 bias=false
  batchnorm2d
end
relu
maxpool2d 2
flatten
linear 10
)";

// Losses of `steps` SGD steps with momentum on a fixed batch, and the final parameters.
std::vector<float> train_steps(tg::Sequential& model, int steps, std::string* tape = nullptr) {
  const Tensor x = random_tensor({4, 3, 8, 8}, 11);
  const std::vector<int> labels{1, 3, 5, 7};
  tg::SGD sgd(model.parameters(), {.lr = 0.05f, .momentum = 0.9f});
  std::vector<float> losses;
  for (int i = 0; i < steps; ++i) {
    sgd.zero_grad();
    Tensor loss = tg::cross_entropy(model(x), labels);
    if (tape && i == 0) *tape = tape_text();
    loss.backward();
    sgd.step();
    losses.push_back(loss.item());
  }
  return losses;
}

}  // namespace

TEST_CASE("a model trains to the same losses, weights and statistics with training fusion on and off") {
  const test_util::ClearTapeOnExit clear_tape;
  std::vector<float> fused_losses, plain_losses;
  std::string tape;
  tg::Sequential fused, plain;
  {
    const ScopedSeed seed(12);
    fused = tg::model_from_text(kTrainModel, {3, 8, 8}, 10);
  }
  {
    const ScopedSeed seed(12);
    plain = tg::model_from_text(kTrainModel, {3, 8, 8}, 10);
  }
  fused_losses = train_steps(fused, 4, &tape);
  tg::set_fusion(false);
  plain_losses = train_steps(plain, 4);
  tg::set_fusion(true);
  INFO(tape);
  // conv + relu, batch norm + relu6, and inside the block batch norm + relu; each layer its own entry
  CHECK(tape.find("[0.Conv2D <text>:1 conv2d 8 3 padding=1] conv2d(") != std::string::npos);
  CHECK(tape.find("-> [4, 8, 8, 8] (fused: not stored)\n") != std::string::npos);
  CHECK(tape.find("relu] relu([4, 8, 8, 8] 0.Conv2D (not stored))") != std::string::npos);
  CHECK(tape.find("relu6] relu6([4, 8, 8, 8] 3.BatchNorm2d (not stored))") != std::string::npos);
  CHECK(tape.find("relu] relu([4, 8, 8, 8] 5.body.1.BatchNorm2d (not stored))") != std::string::npos);
  CHECK(tape.find("batchnorm2d] batch_norm2d([4, 8, 8, 8] 5.body.3.Conv2D, [8] weight, [8] bias) -> [4, 8, "
                  "8, 8]\n") != std::string::npos);
  REQUIRE(fused_losses.size() == plain_losses.size());
  for (std::size_t i = 0; i < fused_losses.size(); ++i)
    CHECK(fused_losses[i] == doctest::Approx(plain_losses[i]).epsilon(1e-5));
  const auto a = fused.named_state(), b = plain.named_state();
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i)
    check_close(a[i].second.value(), b[i].second.value(), a[i].first, 1e-4);
}

TEST_CASE("anomaly detection runs each op on its own, so that it checks the conv's output too") {
  const test_util::ClearTapeOnExit clear_tape;
  const ScopedSeed seed(13);
  tg::Sequential model = tg::model_from_text(kTrainModel, {3, 8, 8}, 10);
  const ScopedDetectAnomaly anomaly(true);
  tg::clear_tape();
  const Tensor out = model(random_tensor({2, 3, 8, 8}, 14));
  const std::string tape = tape_text();
  INFO(tape);
  CHECK(tape.find("not stored") == std::string::npos);
  CHECK(tape.find("relu] relu([2, 8, 8, 8] 0.Conv2D) -> [2, 8, 8, 8]\n") != std::string::npos);
}
