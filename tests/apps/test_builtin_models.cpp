// The built-in 3x32x32 models (apps/models/cifarnet.tg, mobilenet.tg) against their PyTorch twins
// (tests/gen_fixtures_models.py -> tests/fixtures/models_torch.json): the same parameters and state_dict, the
// same parameter count in `tapegrad summary`, and a whole cifarnet forward, backward and 5 AdamW steps.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
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

const Json& models_fixture() {
  static const Json doc = test_util::read_json(test_util::fixture_path("models_torch.json"));
  return doc;
}

// gen_fixtures_models.py's formulas, in double and rounded to float as there.
std::vector<float> fill(std::size_t numel, std::size_t index, double scale, double offset) {
  std::vector<float> v(numel);
  for (std::size_t i = 0; i < numel; ++i) {
    v[i] = static_cast<float>(
        offset + scale * std::sin(0.7 * static_cast<double>(i) + 1.3 * static_cast<double>(index) + 0.1));
  }
  return v;
}

void set_parameters(tg::Sequential& model) {
  const auto named = model.named_parameters();
  for (std::size_t index = 0; index < named.size(); ++index) {
    const auto& [name, p] = named[index];
    const tg::Module& module = model[static_cast<std::size_t>(std::stoul(name.substr(0, name.find('.'))))];
    const bool is_weight = name.ends_with("weight");
    std::vector<float> values;
    if (dynamic_cast<const tg::BatchNorm2d*>(&module)) {
      values = fill(p.numel(), index, 0.1, is_weight ? 1.0 : 0.0);
    } else if (is_weight) {
      values = fill(p.numel(), index, 1.0 / std::sqrt(static_cast<double>(p.numel() / p.shape()[0])), 0.0);
    } else {
      values = fill(p.numel(), index, 0.1, 0.0);
    }
    std::copy(values.begin(), values.end(), p.node()->value.data());
  }
}

tg::Tensor images(int step) {
  tg::Array x = tg::Array::from_shape({8, 3, 32, 32});
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double d = static_cast<double>(i);
    x.data()[i] = static_cast<float>(1.5 * std::sin(0.011 * d + 0.5 * step) + 0.25 * std::cos(0.37 * d));
  }
  return tg::Tensor(std::move(x));
}

const std::vector<int> kLabels = {0, 1, 2, 3, 4, 5, 6, 7};

// A built-in model file as `tapegrad train` builds it for 3x32x32 images and 10 classes.
tg::Sequential builtin(const std::string& name) {
  const tg::cli::ModelText text = tg::cli::find_model(name);
  return tg::model_from_text(text.text, {3, 32, 32}, 10, text.source);
}

}  // namespace

TEST_CASE(
    "built-in models: cifarnet and mobilenet have their PyTorch twins' state_dict and parameter count") {
  const Json& doc = models_fixture();
  REQUIRE(doc.contains("models"));
  for (const std::string name : {"cifarnet", "mobilenet"}) {
    INFO(name);
    const Json& ref = doc.at("models").at(name);
    tg::Sequential model = builtin(name);
    std::size_t count = 0;
    for (const tg::Tensor& p : model.parameters()) count += p.numel();
    CHECK(count == ref.at("parameters").get<std::size_t>());
    const auto state = model.named_state();
    REQUIRE(state.size() == ref.at("state").size());
    for (std::size_t i = 0; i < state.size(); ++i) {
      CHECK(state[i].first == ref.at("state")[i][0].get<std::string>());
      const auto shape = ref.at("state")[i][1].get<std::vector<std::size_t>>();
      CHECK(state[i].second.shape() == tg::Shape(shape.begin(), shape.end()));
    }
    // `tapegrad summary` prints the same count (with thousands separators).
    const auto [code, output] =
        test_util::run(std::string(TG_TAPEGRAD_BIN) + " summary " + name + " --input 3x32x32 --classes 10");
    CHECK(code == 0);
    CHECK(output.find(tg::with_commas(ref.at("parameters").get<std::size_t>())) != std::string::npos);
  }
}

TEST_CASE("built-in models: a cifarnet forward, backward and 5 AdamW steps match PyTorch") {
  const Json& doc = models_fixture();
  REQUIRE(doc.contains("cifarnet_run"));
  const Json& run = doc.at("cifarnet_run");
  // Biases of convolutions that feed a batch norm: gradient 0 up to rounding (batch norm subtracts the mean
  // they add), so they are compared with an absolute allowance and kept out of AdamW, which would step them
  // by +-lr along the rounding noise (gen_fixtures_models.py).
  const auto frozen = run.at("frozen").get<std::vector<std::string>>();
  const auto is_frozen = [&](const std::string& name) {
    return std::find(frozen.begin(), frozen.end(), name) != frozen.end();
  };
  REQUIRE(frozen.size() == 5);
  test_util::ClearTapeOnExit clear_tape;
  {
    tg::Sequential model = builtin("cifarnet");
    set_parameters(model);
    model.train();
    const tg::Tensor logits = model(images(0));
    tg::Tensor loss = tg::cross_entropy(logits, kLabels);
    loss.backward();
    check_against("logits", logits.value(), run.at("logits"), 1e-4);
    CHECK(loss.item() == doctest::Approx(run.at("loss").get<double>()).epsilon(1e-5));
    for (const auto& [name, p] : model.named_parameters()) {
      check_against("grad " + name, p.grad(), run.at("grads").at(name), 2e-3, is_frozen(name) ? 1e-7 : 0.0);
      for (std::size_t i = 0; is_frozen(name) && i < p.grad().size(); ++i)
        CHECK(std::fabs(p.grad().data()[i]) < 1e-6f);
    }
  }
  tg::Sequential model = builtin("cifarnet");
  set_parameters(model);
  model.train();
  const Json& o = run.at("adamw");
  std::vector<tg::Tensor> trained;
  for (const auto& [name, p] : model.named_parameters())
    if (!is_frozen(name)) trained.push_back(p);
  REQUIRE(trained.size() == model.parameters().size() - frozen.size());
  tg::AdamW opt(trained, {.lr = o.at("lr").get<float>(),
                          .beta1 = o.at("betas")[0].get<float>(),
                          .beta2 = o.at("betas")[1].get<float>(),
                          .eps = o.at("eps").get<float>(),
                          .weight_decay = o.at("weight_decay").get<float>()});
  const auto losses = run.at("adamw_losses").get<std::vector<double>>();
  for (int step = 0; step < static_cast<int>(losses.size()); ++step) {
    opt.zero_grad();
    tg::Tensor loss = tg::cross_entropy(model(images(step)), kLabels);
    loss.backward();
    opt.step();
    CHECK(loss.item() == doctest::Approx(losses[static_cast<std::size_t>(step)]).epsilon(1e-4));
  }
  for (const auto& [name, t] : model.named_state())
    check_against("after 5 AdamW steps: " + name, t.value(), run.at("after_adamw").at(name), 1e-3);
}
