// The built-in residual models (apps/models/resnet20.tg, mobilenetv2.tg) against their PyTorch twins
// (tests/gen_fixtures_residual.py -> tests/fixtures/residual_torch.json): mobilenetv2's parameters and
// state_dict at 3x32x32 and 1x28x28 (resnet20's: tests/layers/test_model_file_blocks.cpp), and for each model
// a forward, a backward and SGD steps on a batch of 2 (resnet20 3, mobilenetv2 1: gen_fixtures_residual.py
// says why), as the cifarnet run of test_builtin_models.cpp.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "cli/models.hpp"
#include "fixture_runner.hpp"
#include "tapegrad.hpp"
#include "tensor_summary.hpp"
#include "test_util.hpp"

namespace {

using test_util::check_against;
using test_util::Json;

const Json& residual_fixture() {
  static const Json doc = test_util::read_json(test_util::fixture_path("residual_torch.json"));
  return doc;
}

tg::Sequential builtin(const std::string& name, const tg::Shape& input) {
  const tg::cli::ModelText text = tg::cli::find_model(name);
  return tg::model_from_text(text.text, input, 10, text.source);
}

// gen_fixtures_residual.hashed_uniform, scaled and offset in double and rounded to float as there: an integer
// hash, so both sides draw the same values without sharing a random generator.
std::vector<float> hashed_uniform(std::size_t numel, std::size_t index, double scale, double offset) {
  std::vector<float> v(numel);
  for (std::size_t i = 0; i < numel; ++i) {
    std::uint64_t h = (i * 2654435761ULL + (index + 1) * 2246822519ULL) & 0xFFFFFFFFULL;
    h ^= h >> 15;
    h = (h * 2246822519ULL) & 0xFFFFFFFFULL;
    h ^= h >> 13;
    v[i] = static_cast<float>(offset + scale * (static_cast<double>(h) / 2147483648.0 - 1.0));
  }
  return v;
}

// A weight of more than one dimension u sqrt(3 / fan_in); a one-dimensional weight (batch norm's) 1 + 0.1 u;
// a bias 0.1 u. By the parameter's name and shape alone, so that it reaches inside residual blocks.
void set_hashed_parameters(tg::Sequential& model) {
  const auto named = model.named_parameters();
  for (std::size_t index = 0; index < named.size(); ++index) {
    const auto& [name, p] = named[index];
    std::vector<float> values;
    if (name.ends_with("weight") && p.shape().size() > 1) {
      const double fan_in = static_cast<double>(p.numel() / p.shape()[0]);
      values = hashed_uniform(p.numel(), index, std::sqrt(3.0 / fan_in), 0.0);
    } else if (name.ends_with("weight")) {
      values = hashed_uniform(p.numel(), index, 0.1, 1.0);
    } else {
      values = hashed_uniform(p.numel(), index, 0.1, 0.0);
    }
    std::copy(values.begin(), values.end(), p.node()->value.data());
  }
}

// [batch, 3, 32, 32]: x[i] = 1.5 sin(0.011 i + 0.5 step) + 0.25 cos(0.37 i), in double, rounded to float.
tg::Tensor images(std::size_t batch, int step) {
  tg::Array x = tg::Array::from_shape({batch, 3, 32, 32});
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double d = static_cast<double>(i);
    x.data()[i] = static_cast<float>(1.5 * std::sin(0.011 * d + 0.5 * step) + 0.25 * std::cos(0.37 * d));
  }
  return tg::Tensor(std::move(x));
}

// The fixture's run of `name`: step 0's logits, loss and every gradient, then the SGD losses and every
// parameter and buffer after them, within the cifarnet run's tolerances. Gradients that are 0 in exact
// arithmetic ("zero_grads": batch norm biases whose every path meets another batch norm) are rounding noise
// here and in PyTorch: compared with an absolute allowance, and checked to be that small.
void check_run(const std::string& name) {
  const Json& doc = residual_fixture();
  INFO("fixture: ", test_util::fixture_path("residual_torch.json"), " (tests/gen_fixtures_residual.py)");
  REQUIRE(doc.contains("runs"));
  const Json& run = doc.at("runs").at(name);
  const auto batch = run.at("batch").get<std::size_t>();
  const auto labels = run.at("labels").get<std::vector<int>>();
  REQUIRE(labels.size() == batch);
  test_util::ClearTapeOnExit clear_tape;
  {
    tg::Sequential model = builtin(name, {3, 32, 32});
    set_hashed_parameters(model);
    model.train();
    const tg::Tensor logits = model(images(batch, 0));
    tg::Tensor loss = tg::cross_entropy(logits, labels);
    loss.backward();
    check_against("logits", logits.value(), run.at("logits"), 1e-4);
    CHECK(loss.item() == doctest::Approx(run.at("loss").get<double>()).epsilon(1e-5));
    REQUIRE(model.named_parameters().size() == run.at("grads").size());
    const auto zero = run.at("zero_grads").get<std::vector<std::string>>();
    // 2e-3 as cifarnet's, 5e-3 for mobilenetv2: PyTorch's own float32 gradients are 2e-3 from float64 there
    const double grad_rtol = run.at("grad_rtol").get<double>();
    CHECK(grad_rtol <= 5e-3);
    for (const auto& [pname, p] : model.named_parameters()) {
      const bool noise = std::find(zero.begin(), zero.end(), pname) != zero.end();
      check_against("grad " + pname, p.grad(), run.at("grads").at(pname), grad_rtol, noise ? 1e-4 : 0.0);
      for (std::size_t i = 0; noise && i < p.grad().size(); ++i) CHECK(std::fabs(p.grad().data()[i]) < 1e-4f);
    }
  }
  tg::Sequential model = builtin(name, {3, 32, 32});
  set_hashed_parameters(model);
  model.train();
  const Json& o = run.at("sgd");
  tg::SGD opt(model.parameters(), {.lr = o.at("lr").get<float>(),
                                   .momentum = o.at("momentum").get<float>(),
                                   .weight_decay = o.at("weight_decay").get<float>()});
  const auto losses = run.at("sgd_losses").get<std::vector<double>>();
  REQUIRE(losses.size() == (name == "resnet20" ? 3u : 1u));
  for (int step = 0; step < static_cast<int>(losses.size()); ++step) {
    opt.zero_grad();
    tg::Tensor loss = tg::cross_entropy(model(images(batch, step)), labels);
    loss.backward();
    opt.step();
    CHECK(loss.item() == doctest::Approx(losses[static_cast<std::size_t>(step)]).epsilon(1e-4));
  }
  REQUIRE(model.named_state().size() == run.at("after_sgd").size());
  for (const auto& [sname, t] : model.named_state())
    check_against("after the SGD steps: " + sname, t.value(), run.at("after_sgd").at(sname), 1e-3);
}

}  // namespace

TEST_CASE(
    "built-in models: mobilenetv2 has its PyTorch twin's parameters and state_dict at 3x32x32 and 1x28x28") {
  const Json& doc = residual_fixture();
  REQUIRE_MESSAGE(doc.contains("mobilenetv2"),
                  "tests/fixtures/residual_torch.json has no mobilenetv2 (tests/gen_fixtures_residual.py)");
  REQUIRE(doc.at("mobilenetv2").size() == 2);
  for (const Json& twin : doc.at("mobilenetv2")) {
    const auto input = twin.at("input_shape").get<std::vector<std::size_t>>();
    const std::string size =
        std::to_string(input[0]) + "x" + std::to_string(input[1]) + "x" + std::to_string(input[2]);
    INFO("input ", size);
    tg::Sequential model = builtin("mobilenetv2", tg::Shape(input.begin(), input.end()));
    std::size_t count = 0;
    for (const tg::Tensor& p : model.parameters()) count += p.numel();
    const auto expected = twin.at("parameters").get<std::size_t>();
    CHECK(count == expected);
    const auto state = model.named_state();
    REQUIRE(state.size() == twin.at("state").size());
    for (std::size_t i = 0; i < state.size(); ++i) {
      CHECK(state[i].first == twin.at("state")[i][0].get<std::string>());
      const auto shape = twin.at("state")[i][1].get<std::vector<std::size_t>>();
      CHECK(state[i].second.shape() == tg::Shape(shape.begin(), shape.end()));
    }
    // `tapegrad summary` prints the same count, which the model file's header states.
    const auto [code, output] = test_util::run(std::string(TG_TAPEGRAD_BIN) +
                                               " summary mobilenetv2 --input " + size + " --classes 10");
    CHECK(code == 0);
    CHECK(output.find("total parameters: " + tg::with_commas(expected)) != std::string::npos);
    CHECK(
        tg::cli::find_model("mobilenetv2").text.find(tg::with_commas(expected) + " parameters for " + size) !=
        std::string::npos);
  }
}

TEST_CASE("built-in models: a resnet20 forward, backward and 3 SGD steps match PyTorch") {
  check_run("resnet20");
}

TEST_CASE("built-in models: a mobilenetv2 forward, backward and an SGD step match PyTorch") {
  check_run("mobilenetv2");
}
