// The custom-layer example (apps/custom_layer.hpp): a layer composed from ops (PReLU) and one with a
// primitive op of its own (SiLU) pass gradcheck, train inside a Sequential, and, registered as
// apps/custom_layer registers them, build from model-file lines and write themselves back. The program
// itself: tests/apps/test_custom_layer_app.cpp.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "custom_layer.hpp"
#include "tapegrad.hpp"
#include "test_util.hpp"

using namespace test_util;

namespace {

// What apps/custom_layer.cpp does before tg::cli::main, once per test process.
void register_example_layers() {
  if (!tg::find_layer("prelu")) tg::register_layer("prelu", example::make_prelu);
  if (!tg::find_layer("silu")) tg::register_layer("silu", example::make_silu);
}

const char* const kModel = "flatten\nlinear 8\nprelu slope=0.1\nlinear 8\nsilu\nprelu\nlinear classes\n";

}  // namespace

GRADCHECK_TEST_CASE("silu", "of the custom-layer example, on both sides of 0") {
  check_gradients([](const Inputs& in) { return example::silu(in[0]); }, {param({3, 4}, 11, -3.f, 3.f)});
}

TEST_CASE("custom layer: PReLU's gradients, to its input and to its slope, pass gradcheck") {
  example::PReLU prelu(0.25f);
  // in[1] is the module's own slope: gradcheck perturbs it in place, so the module sees every perturbation.
  check_gradients([&](const Inputs& in) { return tg::sum(prelu(in[0]) * prelu(in[0])); },
                  {param_away_from_zero({2, 5}, 3), prelu.slope});
  prelu.slope.zero_grad();
  tg::Tensor x(tg::Array{{-2.f, 1.f}});
  tg::sum(prelu(x)).backward();
  CHECK(prelu.slope.grad()(0) == doctest::Approx(-2.f));  // d/da sum(relu(x) - a * relu(-x)) = -relu(2)
}

TEST_CASE("the custom-layer example's layers train inside a Sequential, loss going down") {
  const ScopedSeed seed(0);
  tg::Array points = tg::rand_uniform({128, 2}, -1.5f, 1.5f);
  std::vector<int> labels(128);
  for (std::size_t i = 0; i < 128; ++i)
    labels[i] = points(i, 0) * points(i, 0) + points(i, 1) * points(i, 1) < 1.f;
  tg::Sequential model(tg::Linear(2, 16), example::PReLU(), tg::Linear(16, 16), example::SiLU(),
                       tg::Linear(16, 2));
  CHECK(model.named_parameters()[2].first == "1.weight");  // PReLU's slope is a registered parameter
  tg::SGD opt(model.parameters(), {.lr = 0.1f, .momentum = 0.9f});
  const float slope_before = model.at<example::PReLU>(1).slope.value()(0);
  float first = 0.f, last = 0.f;
  for (int step = 0; step < 100; ++step) {
    tg::Tensor loss = tg::cross_entropy(model(tg::Tensor(points)), labels);
    if (step == 0) first = loss.item();
    last = loss.item();
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  CHECK(last < 0.5f * first);
  CHECK(model.at<example::PReLU>(1).slope.value()(0) != slope_before);
}

TEST_CASE("custom layer: prelu and silu lines build the example's modules, and model_to_text round-trips") {
  register_example_layers();
  tg::Sequential m = tg::model_from_text(kModel, {1, 4, 4}, 3, "custom.tg");
  REQUIRE(m.size() == 7);
  CHECK(m.at<example::PReLU>(2).slope.value()(0) == 0.1f);
  CHECK(m.at<example::PReLU>(5).slope.value()(0) == 0.25f);  // the default slope
  CHECK_NOTHROW(m.at<example::SiLU>(4));
  CHECK(m[2].source() == "custom.tg:3 prelu slope=0.1");
  const std::vector<std::string> keys = {"1.weight", "1.bias",   "2.weight", "3.weight",
                                         "3.bias",   "5.weight", "6.weight", "6.bias"};
  std::vector<std::string> names;
  for (const auto& [name, tensor] : m.named_parameters()) names.push_back(name);
  CHECK(names == keys);  // nn.PReLU's key: "weight"

  const std::string text = tg::model_to_text(m);
  CHECK(text == "flatten\nlinear 8\nprelu slope=0.1\nlinear 8\nsilu\nprelu slope=0.25\nlinear 3\n");
  tg::Sequential again = tg::model_from_text(text, {1, 4, 4}, 3);
  CHECK(tg::model_to_text(again) == text);
  CHECK(again.num_parameters() == m.num_parameters());
  CHECK(again.at<example::PReLU>(2).slope.value()(0) == 0.1f);
}

TEST_CASE("custom layer: modules built in C++ have model-file lines, shapes and readable names") {
  tg::Sequential m(tg::Flatten(), tg::Linear(16, 8), example::PReLU(0.5f), example::SiLU(), tg::Linear(8, 3));
  CHECK(tg::model_to_text(m) == "flatten\nlinear 8\nprelu slope=0.5\nsilu\nlinear 3\n");
  CHECK(m[2].output_shape({8}) == tg::Shape{8});
  CHECK(m[3].output_shape({6, 5, 5}) == tg::Shape{6, 5, 5});
  CHECK(m[2].describe() == "PReLU(initial slope 0.5)");
  CHECK(m[3].describe() == "SiLU");
  // The initial slope, not the trained one: the line builds the layer, the checkpoint holds its weights.
  m.at<example::PReLU>(2).slope.value()(0) = 0.75f;
  CHECK(m[2].to_line() == "prelu slope=0.5");
}

TEST_CASE("custom layer: a key or argument the factory does not read is a file:line: error") {
  register_example_layers();
  CHECK_THROWS_WITH_AS(tg::model_from_text("flatten\nprelu slop=0.1\nlinear 3\n", {4}, 3, "net.tg"),
                       "net.tg:2: prelu: unknown key 'slop' (did you mean 'slope'? allowed: slope)",
                       tg::ModelFileError);
  CHECK_THROWS_WITH_AS(tg::model_from_text("silu 3\nlinear 3\n", {4}, 3, "net.tg"),
                       "net.tg:1: silu: unexpected argument '3' (usage: silu)", tg::ModelFileError);
  CHECK_THROWS_AS(tg::model_from_text("prelu slope=abc\nlinear 3\n", {4}, 3, "net.tg"), tg::ModelFileError);
}
