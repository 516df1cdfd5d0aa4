// Adam and AdamW (optim/adam.hpp): every option set follows PyTorch 1.13's torch.optim.Adam / AdamW step for
// step; the state saved mid-run continues the run bit for bit; bad options and bad state are refused.
// tests/fixtures/adam_trajectories.json, written by /usr/bin/python3 tests/gen_fixtures_adam.py, holds 20
// steps of six option sets of each on three parameters fed recorded gradients (one parameter has none for
// the first three steps), the parameters after every step and the final state.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "fixture_runner.hpp"
#include "tapegrad.hpp"
#include "test_util.hpp"

using namespace test_util;
using tg::Array;
using tg::Tensor;

namespace {

constexpr const char* kRegenerateAdam = " (regenerate with /usr/bin/python3 tests/gen_fixtures_adam.py)";
// Tapegrad does PyTorch's float operations in PyTorch's order, so the trajectories agree to the last bit
// (the test reports the max diff: 0 with the fixture's machine's libm); the tolerance is a few float ulps.
constexpr Tolerance kTolAdam{1e-7f, 1e-6f};

const Json& adam_fixture() {
  const Json& doc = fixture("adam_trajectories.json");
  INFO("fixture file: ", fixture_path("adam_trajectories.json"), kRegenerateAdam);
  REQUIRE_MESSAGE(doc.is_object(), "fixture file is missing or is not valid JSON");
  REQUIRE(doc.contains("configs"));
  return doc;
}

tg::AdamOptions adam_options(const Json& o) {
  return {.lr = o.at("lr").get<float>(),
          .beta1 = o.at("beta1").get<float>(),
          .beta2 = o.at("beta2").get<float>(),
          .eps = o.at("eps").get<float>(),
          .weight_decay = o.at("weight_decay").get<float>()};
}

std::unique_ptr<tg::Optimizer> make_optimizer(const std::string& kind, std::vector<Tensor> params,
                                              const tg::AdamOptions& o) {
  if (kind == "adam") return std::make_unique<tg::Adam>(std::move(params), o);
  REQUIRE(kind == "adamw");
  return std::make_unique<tg::AdamW>(
      std::move(params),
      tg::AdamWOptions{
          .lr = o.lr, .beta1 = o.beta1, .beta2 = o.beta2, .eps = o.eps, .weight_decay = o.weight_decay});
}

std::vector<Tensor> initial_parameters(const Json& doc) {
  std::vector<Tensor> params;
  for (const Json& p : doc.at("parameters0")) params.emplace_back(array_of(p), /*requires_grad=*/true);
  return params;
}

// Gives each parameter the fixture's gradient of step `step` (0-based), or none (an empty grad, which the
// optimizer skips, as PyTorch skips p.grad None).
void set_gradients(const Json& doc, std::size_t step, std::vector<Tensor>& params) {
  const Json& grads = doc.at("grads").at(step);
  for (std::size_t i = 0; i < params.size(); ++i) {
    Array& grad = params[i].node()->grad;
    if (grads.at(i).is_null()) {
      grad = Array::from_shape({0});
      continue;
    }
    grad = Array::from_shape(params[i].shape());
    const std::vector<float> data = grads.at(i).get<std::vector<float>>();
    REQUIRE(data.size() == grad.size());
    std::copy(data.begin(), data.end(), grad.begin());
  }
}

bool same_bits(const Array& a, const Array& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

Json tensor_json(const Json& shape, const Json& data) { return Json{{"shape", shape}, {"data", data}}; }

}  // namespace

TEST_CASE("Adam and AdamW match PyTorch's torch.optim.Adam and AdamW step for step, for every option set") {
  const Json& doc = adam_fixture();
  const Json& configs = doc.at("configs");
  REQUIRE(configs.size() == 12);
  const std::size_t num_steps = doc.at("num_steps").get<std::size_t>();
  float max_diff = 0.f;
  int adam_configs = 0, adamw_configs = 0;
  for (const Json& config : configs) {
    const std::string kind = config.at("kind").get<std::string>();
    const tg::AdamOptions o = adam_options(config.at("options"));
    (kind == "adam" ? adam_configs : adamw_configs)++;
    INFO(kind, " config: ", config.at("name").get<std::string>(), " (lr ", o.lr, ", betas ", o.beta1, ", ",
         o.beta2, ", eps ", o.eps, ", weight_decay ", o.weight_decay, ")");
    std::vector<Tensor> params = initial_parameters(doc);
    const auto opt = make_optimizer(kind, params, o);
    const Json& steps = config.at("steps");
    REQUIRE(steps.size() == num_steps);
    for (std::size_t step = 0; step < num_steps; ++step) {
      INFO("step ", step + 1, " of ", num_steps);
      set_gradients(doc, step, params);
      opt->step();
      for (std::size_t i = 0; i < params.size(); ++i) {
        const std::string name = doc.at("parameter_names").at(i).get<std::string>();
        const Json want = tensor_json(doc.at("parameters0").at(i).at("shape"), steps[step].at(name));
        check_close(params[i].value(), want, name + " after the step", kTolAdam);
        const std::vector<float> w = want.at("data").get<std::vector<float>>();
        for (std::size_t k = 0; k < w.size(); ++k)
          max_diff = std::max(max_diff, std::fabs(params[i].value().data()[k] - w[k]));
      }
    }
    // The state PyTorch ends with, under tapegrad's names.
    const auto state = opt->state();
    const Json& final_state = config.at("final_state");
    REQUIRE(state.size() == 3 * final_state.size());
    for (std::size_t i = 0; i < final_state.size(); ++i) {
      const std::string index = std::to_string(i);
      CHECK(state[3 * i].first == "exp_avg." + index);
      CHECK(state[3 * i + 1].first == "exp_avg_sq." + index);
      CHECK(state[3 * i + 2].first == "step." + index);
      check_close(state[3 * i].second, final_state[i].at("exp_avg"), "exp_avg." + index, kTolAdam);
      check_close(state[3 * i + 1].second, final_state[i].at("exp_avg_sq"), "exp_avg_sq." + index, kTolAdam);
      CHECK(state[3 * i + 2].second.dimension() == 0);
      CHECK(state[3 * i + 2].second() == final_state[i].at("step").get<float>());
    }
  }
  CHECK(adam_configs == 6);
  CHECK(adamw_configs == 6);
  MESSAGE("Adam/AdamW vs PyTorch 1.13, 12 option sets x 20 steps: max |tapegrad - PyTorch| = ", max_diff);
}

TEST_CASE("Adam and AdamW continue bit for bit from state saved mid-run and loaded into a fresh optimizer") {
  const Json& doc = adam_fixture();
  const std::size_t num_steps = doc.at("num_steps").get<std::size_t>();
  for (const std::string kind : {"adam", "adamw"}) {
    const tg::AdamOptions o{
        .lr = 5e-3f, .beta1 = 0.85f, .beta2 = 0.995f, .eps = 1e-6f, .weight_decay = 0.05f};
    std::vector<Tensor> full = initial_parameters(doc);
    const auto full_opt = make_optimizer(kind, full, o);
    for (std::size_t step = 0; step < num_steps; ++step) {
      set_gradients(doc, step, full);
      full_opt->step();
    }
    // Split after step 2 (parameter 2 has no state yet) and after step 10 (every parameter has, with
    // different step counts).
    for (const std::size_t split : {std::size_t{2}, std::size_t{10}}) {
      INFO(kind, ", state saved after step ", split);
      std::vector<Tensor> first = initial_parameters(doc);
      const auto first_opt = make_optimizer(kind, first, o);
      for (std::size_t step = 0; step < split; ++step) {
        set_gradients(doc, step, first);
        first_opt->step();
      }
      const auto saved = first_opt->state();
      CHECK(saved.size() == (split <= 3 ? 6u : 9u));

      std::vector<Tensor> second;
      for (const Tensor& p : first) second.emplace_back(Array(p.value()), /*requires_grad=*/true);
      const auto second_opt = make_optimizer(kind, second, o);
      second_opt->load_state(saved);
      const auto reloaded = second_opt->state();
      REQUIRE(reloaded.size() == saved.size());
      for (std::size_t k = 0; k < saved.size(); ++k) {
        CHECK(reloaded[k].first == saved[k].first);
        CHECK(same_bits(reloaded[k].second, saved[k].second));
      }
      for (std::size_t step = split; step < num_steps; ++step) {
        set_gradients(doc, step, second);
        second_opt->step();
      }
      for (std::size_t i = 0; i < full.size(); ++i) {
        INFO("parameter ", i);
        CHECK(same_bits(second[i].value(), full[i].value()));
      }
      const auto end_full = full_opt->state(), end_second = second_opt->state();
      REQUIRE(end_full.size() == end_second.size());
      for (std::size_t k = 0; k < end_full.size(); ++k) {
        INFO(end_full[k].first);
        CHECK(same_bits(end_full[k].second, end_second[k].second));
      }
    }
  }
}

TEST_CASE("Adam and AdamW take PyTorch's defaults, and AdamW's weight decay is 1e-2") {
  const tg::AdamOptions adam;
  const tg::AdamWOptions adamw;
  CHECK(adam.lr == 1e-3f);
  CHECK(adam.beta1 == 0.9f);
  CHECK(adam.beta2 == 0.999f);
  CHECK(adam.eps == 1e-8f);
  CHECK(adam.weight_decay == 0.f);
  CHECK(adamw.lr == 1e-3f);
  CHECK(adamw.beta1 == 0.9f);
  CHECK(adamw.beta2 == 0.999f);
  CHECK(adamw.eps == 1e-8f);
  CHECK(adamw.weight_decay == 1e-2f);
}

TEST_CASE("A schedule sets Adam's learning rate for the next step") {
  // Adam with lr 0.1 scheduled down to 0.05 takes the same step as Adam built with lr 0.05.
  for (const std::string kind : {"adam", "adamw"}) {
    INFO(kind);
    Tensor a(Array{1.f, -2.f, 3.f}, true), b(Array{1.f, -2.f, 3.f}, true);
    const auto scheduled = make_optimizer(kind, {a}, {.lr = 0.1f, .weight_decay = 0.01f});
    const auto fixed = make_optimizer(kind, {b}, {.lr = 0.05f, .weight_decay = 0.01f});
    tg::StepLR schedule(*scheduled, /*step_size=*/1, /*gamma=*/0.5f);
    schedule.step();
    CHECK(scheduled->lr() == 0.05f);
    for (int step = 0; step < 3; ++step) {
      a.node()->grad = Array{0.5f, 0.25f, -1.f};
      b.node()->grad = Array{0.5f, 0.25f, -1.f};
      scheduled->step();
      fixed->step();
    }
    CHECK(same_bits(a.value(), b.value()));
    CHECK(a.value()(0) < 1.f);  // it moved against the gradient
  }
}

TEST_CASE(
    "Adam and AdamW refuse a negative or NaN lr or eps, betas outside 0 <= beta < 1, or a negative weight "
    "decay") {
  Tensor w(Array{1.f}, true);
  const float nan = std::nanf("");
  CHECK_THROWS_WITH_AS(tg::Adam({w}, {.lr = -1e-3f}), doctest::Contains("Adam: lr must be finite and >= 0"),
                       tg::Error);
  CHECK_THROWS_AS(tg::Adam({w}, {.lr = nan}), tg::Error);
  CHECK_THROWS_WITH_AS(tg::AdamW({w}, {.eps = -1e-8f}),
                       doctest::Contains("AdamW: eps must be finite and >= 0"), tg::Error);
  CHECK_THROWS_AS(tg::Adam({w}, {.eps = nan}), tg::Error);
  CHECK_THROWS_WITH_AS(tg::Adam({w}, {.beta1 = 1.f}), doctest::Contains("beta1 must be in [0, 1), got 1"),
                       tg::Error);
  CHECK_THROWS_WITH_AS(tg::AdamW({w}, {.beta2 = -0.1f}), doctest::Contains("beta2 must be in [0, 1)"),
                       tg::Error);
  CHECK_THROWS_AS(tg::Adam({w}, {.beta2 = nan}), tg::Error);
  CHECK_THROWS_WITH_AS(tg::AdamW({w}, {.weight_decay = -0.01f}),
                       doctest::Contains("weight_decay must be finite and >= 0"), tg::Error);
  CHECK_NOTHROW(tg::Adam({w}, {.lr = 0.f, .beta1 = 0.f, .beta2 = 0.f, .eps = 0.f}));
  tg::Adam adam({w}, {});
  CHECK_THROWS_AS(adam.set_lr(-1.f), tg::Error);
}

TEST_CASE(
    "Adam's load_state refuses wrong names, indices, shapes, steps and partial state, and keeps its own") {
  Tensor w(Array::from_shape({2, 3}), true), b(Array::from_shape({3}), true);
  tg::AdamW opt({w, b}, {});
  w.node()->grad = xt::ones<float>(w.shape());
  b.node()->grad = xt::ones<float>(b.shape());
  opt.step();
  const auto good = opt.state();
  REQUIRE(good.size() == 6);

  auto with = [&](std::size_t index, std::string name, Array value) {
    auto state = good;
    state[index] = {std::move(name), std::move(value)};
    return state;
  };
  auto refused = [&](const std::vector<std::pair<std::string, Array>>& state, const std::string& says) {
    INFO("expected an error saying: ", says);
    CHECK_THROWS_WITH_AS(opt.load_state(state), doctest::Contains(says.c_str()), tg::Error);
    // A refused state leaves the optimizer's own.
    const auto now = opt.state();
    REQUIRE(now.size() == good.size());
    for (std::size_t k = 0; k < now.size(); ++k) CHECK(same_bits(now[k].second, good[k].second));
  };
  refused({{"momentum_buffer.0", xt::zeros<float>(w.shape())}},
          "unexpected entry 'momentum_buffer.0', expected exp_avg.<i>, exp_avg_sq.<i> and step.<i>");
  refused(with(0, "exp_avg.x", good[0].second), "unexpected entry 'exp_avg.x'");
  refused(with(0, "exp_avg.7", good[0].second), "'exp_avg.7' but the optimizer has 2 parameters");
  refused(with(3, "exp_avg.1", xt::zeros<float>({4})), "'exp_avg.1' has shape [4], parameter 1 has [3]");
  refused(with(2, "step.0", Array{1.f}), "'step.0' must be a 0-d whole number >= 1");
  refused(with(2, "step.0", Array(0.f)), "'step.0' must be a 0-d whole number >= 1");
  refused(with(2, "step.0", Array(1.5f)), "'step.0' must be a 0-d whole number >= 1");
  refused(with(1, "exp_avg.0", good[0].second), "'exp_avg.0' is given twice");
  auto partial = good;
  partial.erase(partial.begin() + 1);  // exp_avg_sq.0
  refused(partial, "parameter 0 has exp_avg step but not all of exp_avg, exp_avg_sq and step");

  CHECK_NOTHROW(opt.load_state({}));  // no state: a fresh start
  CHECK(opt.state().empty());
  CHECK_NOTHROW(opt.load_state(good));
  CHECK(opt.state().size() == 6);
}
