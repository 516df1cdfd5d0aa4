// SGD (optim/sgd.hpp): options are validated, and every option set (momentum, dampening, Nesterov, weight
// decay) follows PyTorch's torch.optim.SGD step for step: tests/fixtures/sgd_trajectories.json, written by
// /usr/bin/python3 tests/gen_fixtures_train.py, holds 20 steps of mse_loss(linear(X, W, b), Y) per option
// set, with W and b after every step and every step's loss.
#include <doctest/doctest.h>

#include <cmath>
#include <exception>
#include <string>

#include "fixture_runner.hpp"
#include "tapegrad.hpp"
#include "test_util.hpp"

using namespace test_util;
using tg::Array;
using tg::Tensor;

namespace {

constexpr const char* kSgdFixturePath = TG_FIXTURE_DIR "/sgd_trajectories.json";
constexpr const char* kRegenerateSgd = " (regenerate with /usr/bin/python3 tests/gen_fixtures_train.py)";
constexpr Tolerance kTolSgd{1e-5f, 1e-4f};

const Json& sgd_fixture() { return fixture("sgd_trajectories.json"); }

void check_scalar(float got, float want, const std::string& what) {
  INFO("comparing ", what);
  CHECK_MESSAGE(close(got, want, kTolSgd), what, ": tapegrad ", got, ", PyTorch ", want);
}

// ---- SGD -----------------------------------------------------------------------------------------

tg::SGDOptions sgd_options(const Json& o) {
  return {.lr = o.at("lr").get<float>(),
          .momentum = o.at("momentum").get<float>(),
          .dampening = o.at("dampening").get<float>(),
          .weight_decay = o.at("weight_decay").get<float>(),
          .nesterov = o.at("nesterov").get<bool>()};
}

// Runs one option set for the fixture's number of steps and compares after each step.
void run_sgd_config(const Json& doc, const Json& config) {
  const tg::Tensor x(array_of(doc.at("X")));
  const tg::Tensor y(array_of(doc.at("Y")));
  tg::Tensor w(array_of(doc.at("W0")), /*requires_grad=*/true);
  tg::Tensor b(array_of(doc.at("b0")), /*requires_grad=*/true);
  tg::SGD opt({w, b}, sgd_options(config.at("options")));

  const Json& steps = config.at("steps");
  REQUIRE(steps.size() == doc.at("num_steps").get<std::size_t>());
  for (std::size_t step = 0; step < steps.size(); ++step) {
    INFO("step ", step + 1, " of ", steps.size());
    opt.zero_grad();
    const tg::Tensor loss = tg::mse_loss(tg::linear(x, w, b), y);
    loss.backward();
    opt.step();
    check_scalar(loss.item(), steps[step].at("loss").get<float>(), "loss (before the step)");
    check_close(w.value(), steps[step].at("W"), "W after the step");
    check_close(b.value(), steps[step].at("b"), "b after the step");
  }
}

}  // namespace

TEST_CASE("SGD matches PyTorch's torch.optim.SGD step for step, for every option set") {
  const Json& doc = sgd_fixture();
  INFO("fixture file: ", std::string(kSgdFixturePath), kRegenerateSgd);
  REQUIRE_MESSAGE(doc.is_object(), "fixture file is missing or is not valid JSON");
  REQUIRE(doc.contains("configs"));
  const Json& configs = doc.at("configs");
  REQUIRE(configs.size() == 6);

  bool saw_nesterov = false, saw_dampening = false, saw_weight_decay_with_momentum = false;
  for (const Json& config : configs) {
    const tg::SGDOptions o = sgd_options(config.at("options"));
    saw_nesterov |= o.nesterov;
    saw_dampening |= o.dampening > 0.f;
    saw_weight_decay_with_momentum |= o.weight_decay > 0.f && o.momentum > 0.f;
    INFO("SGD config: ", config.at("name").get<std::string>(), " (lr ", o.lr, ", momentum ", o.momentum,
         ", dampening ", o.dampening, ", weight_decay ", o.weight_decay, ", nesterov ", o.nesterov, ")");
    try {
      run_sgd_config(doc, config);
    } catch (const std::exception& e) {
      FAIL_CHECK("threw: ", std::string(e.what()));
    }
  }
  CHECK(saw_nesterov);
  CHECK(saw_dampening);
  CHECK(saw_weight_decay_with_momentum);
}

TEST_CASE("SGD rejects a negative or NaN learning rate, and Nesterov without momentum") {
  Tensor w(Array{1.f}, true);
  CHECK_THROWS_AS(tg::SGD({w}, {.lr = -1.f}), tg::Error);
  CHECK_THROWS_AS(tg::SGD({w}, {.lr = std::nanf("")}), tg::Error);
  CHECK_THROWS_WITH_AS(tg::SGD({w}, {.lr = 0.1f, .momentum = 0.f, .nesterov = true}),
                       doctest::Contains("nesterov needs momentum > 0"), tg::Error);
}
