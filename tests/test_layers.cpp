// Modules: Sequential, parameter names, initialization, summaries, errors naming the layer, train/eval.
#include <doctest/doctest.h>

#include <cmath>

#include "tapegrad.hpp"

using tg::Array;
using tg::Tensor;

namespace {

tg::Sequential lenet() {
  return tg::Sequential(tg::Conv2D(1, 6, 5, {.padding = {2, 2}}), tg::ReLU(), tg::MaxPool2D(2), tg::Conv2D(6, 16, 5),
                        tg::ReLU(), tg::MaxPool2D(2), tg::Flatten(), tg::Linear(400, 120), tg::ReLU(),
                        tg::Linear(120, 84), tg::ReLU(), tg::Linear(84, 10));
}

tg::Sequential convnet() {
  return tg::Sequential(tg::Conv2D(1, 32, 3), tg::ReLU(), tg::Conv2D(32, 64, 3), tg::ReLU(), tg::MaxPool2D(2),
                        tg::Flatten(), tg::Linear(9216, 128), tg::ReLU(), tg::Linear(128, 10));
}

}  // namespace

TEST_CASE("named_parameters uses PyTorch nn.Sequential state_dict keys") {
  tg::Sequential model = lenet();
  std::vector<std::string> keys;
  for (auto& [name, p] : model.named_parameters()) keys.push_back(name);
  CHECK(keys == std::vector<std::string>{"0.weight", "0.bias", "3.weight", "3.bias", "7.weight", "7.bias",
                                         "9.weight", "9.bias", "11.weight", "11.bias"});
  CHECK(model.parameters().size() == 10);
  for (const Tensor& p : model.parameters()) CHECK(p.requires_grad());
}

TEST_CASE("summary reports each layer's output shape and the PyTorch parameter totals") {
  tg::Sequential a = lenet();
  const std::string s = a.summary({1, 1, 28, 28});
  INFO(s);
  CHECK(s.find("total parameters: 61,706") != std::string::npos);
  CHECK(s.find("[1, 6, 28, 28]") != std::string::npos);
  CHECK(s.find("[1, 16, 5, 5]") != std::string::npos);
  CHECK(s.find("[1, 400]") != std::string::npos);
  CHECK(s.find("Linear(400 -> 120)") != std::string::npos);
  CHECK(tg::tape_size() == 0);
  tg::Sequential b = convnet();
  CHECK(b.summary({2, 1, 28, 28}).find("total parameters: 1,199,882") != std::string::npos);
  CHECK(b.is_training());  // mode restored
}

TEST_CASE("default initialization follows PyTorch's ranges and statistics") {
  tg::manual_seed(0);
  tg::Conv2D conv(16, 32, 5);                 // fan_in = 400, bound 0.05
  tg::Linear fc(9216, 128);                    // fan_in = 9216, bound ~0.0104
  const float conv_bound = 1.f / std::sqrt(400.f), fc_bound = 1.f / std::sqrt(9216.f);
  CHECK(xt::amax(xt::abs(conv.weight.value()))() <= conv_bound);
  CHECK(xt::amax(xt::abs(conv.bias.value()))() <= conv_bound);
  CHECK(xt::amax(xt::abs(fc.weight.value()))() <= fc_bound);
  CHECK(xt::amax(xt::abs(fc.bias.value()))() <= fc_bound);
  // U(-b, b): mean 0, std b / sqrt(3); the maximum comes close to b
  const double std_expected = fc_bound / std::sqrt(3.0);
  CHECK(xt::stddev(fc.weight.value())() == doctest::Approx(std_expected).epsilon(0.01));
  CHECK(std::abs(xt::mean(fc.weight.value())()) < 0.01 * fc_bound);
  CHECK(xt::amax(conv.weight.value())() > 0.99f * conv_bound);
  CHECK(conv.weight.shape() == tg::Shape{32, 16, 5, 5});
  // same seed, same weights
  tg::manual_seed(0);
  tg::Conv2D again(16, 32, 5);
  CHECK(again.weight.value() == conv.weight.value());
}

TEST_CASE("a shape error inside a Sequential names the layer") {
  tg::Sequential model(tg::Flatten(), tg::Linear(256, 400), tg::ReLU(), tg::Linear(300, 120));
  CHECK_THROWS_WITH_AS(model(Tensor(xt::zeros<float>({64, 256}))),
                       "layer 3 Linear(300 -> 120): expected input [N, 300], got [64, 400]", tg::Error);
  tg::Sequential lenet_model = lenet();
  CHECK_THROWS_WITH_AS(lenet_model(Tensor(xt::zeros<float>({2, 3, 28, 28}))),
                       "layer 0 Conv2D(1 -> 6, kernel 5x5, padding 2x2): expected input [N, 1, H, W], got [2, 3, 28, 28]",
                       tg::Error);
  CHECK_THROWS_WITH_AS(lenet_model(Tensor(xt::zeros<float>({2, 1, 32, 32}))),
                       doctest::Contains("layer 7 Linear(400 -> 120): expected input [N, 400], got [2, 576]"),
                       tg::Error);
  tg::clear_tape();
}

TEST_CASE("Sequential gives typed access, indexing and size") {
  tg::Sequential model = lenet();
  CHECK(model.size() == 12);
  tg::Conv2D& conv = model.at<tg::Conv2D>(0);
  CHECK(conv.weight.shape() == tg::Shape{6, 1, 5, 5});
  CHECK(model[7].describe() == "Linear(400 -> 120)");
  CHECK_THROWS_WITH_AS(model.at<tg::Linear>(0), doctest::Contains("layer 0 is Conv2D"), tg::Error);
  CHECK_THROWS_WITH_AS(model[12], doctest::Contains("out of range"), tg::Error);
  tg::Sequential built;
  built.add(tg::Linear(4, 3));
  built.add(tg::Tanh());
  CHECK(built(Tensor(xt::zeros<float>({2, 4}))).shape() == tg::Shape{2, 3});
}

TEST_CASE("layer outputs and tape entries carry the layer's name") {
  tg::Sequential model(tg::Linear(4, 3), tg::ReLU());
  Tensor y = model(Tensor(xt::ones<float>({2, 4})));
  CHECK(y.name() == "1.ReLU");
  std::ostringstream tape;
  tg::print_tape(tape);
  CHECK(tape.str().find("[0.Linear] linear(") != std::string::npos);
  CHECK(tape.str().find("[1.ReLU] relu(") != std::string::npos);
  tg::clear_tape();
}

TEST_CASE("Dropout scales kept activations in training and is the identity in eval") {
  tg::manual_seed(3);
  tg::Sequential model(tg::Dropout(0.5f));
  Tensor x(xt::ones<float>({1000}), true);
  const Array y = model(x).value();
  std::size_t zeros = 0;
  for (float v : y) {
    CHECK((v == 0.f || v == 2.f));
    zeros += v == 0.f;
  }
  CHECK(zeros > 400);
  CHECK(zeros < 600);
  model.eval();
  CHECK(model(x).value() == x.value());
  CHECK_THROWS_AS(tg::Dropout(1.f), tg::Error);
  tg::clear_tape();
}

TEST_CASE("activation modules compute their functions") {
  Tensor x(Array{{-2.f, 0.5f}});
  CHECK(tg::ReLU()(x).value() == Array{{0.f, 0.5f}});
  CHECK(tg::LeakyReLU(0.1f)(x).value()(0, 0) == doctest::Approx(-0.2f));
  CHECK(tg::Sigmoid()(x).value()(0, 1) == doctest::Approx(0.622459));
  CHECK(tg::Tanh()(x).value()(0, 0) == doctest::Approx(-0.964028));
  CHECK(tg::Softmax()(x).value()(0, 1) == doctest::Approx(0.924142));
  CHECK(tg::LogSoftmax()(x).value()(0, 1) == doctest::Approx(-0.078889));
  CHECK(tg::Flatten()(Tensor(xt::zeros<float>({2, 3, 4}))).shape() == tg::Shape{2, 12});
}

TEST_CASE("gradcheck: leaky_relu and dropout with a fixed mask") {
  tg::Generator gen(1);
  Array v = tg::rand_uniform({3, 4}, 0.2f, 1.f, gen);
  for (std::size_t i = 0; i < v.size(); i += 2) v.data()[i] = -v.data()[i];
  Tensor x(v, true);
  auto r = tg::gradcheck([](const std::vector<Tensor>& in) { return tg::leaky_relu(in[0], 0.1f); }, {x});
  INFO(r.report);
  CHECK(r.ok);
  auto d = tg::gradcheck(
      [](const std::vector<Tensor>& in) {
        tg::Generator mask_gen(9);  // the same mask on every evaluation
        return tg::dropout(in[0], 0.3f, mask_gen);
      },
      {x});
  INFO(d.report);
  CHECK(d.ok);
  CHECK(d.nonzero);
}
