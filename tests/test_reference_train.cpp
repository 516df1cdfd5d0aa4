// Checks tapegrad's SGD and its safetensors checkpoints against PyTorch 1.13.
//
// The numbers live in tests/fixtures/{sgd_trajectories.json, lenet_torch.safetensors, lenet_torch.json},
// written by tests/gen_fixtures_train.py (`/usr/bin/python3 tests/gen_fixtures_train.py`); these tests
// only read them and never need torch.
//   - SGD: six option sets (momentum, dampening, Nesterov, weight decay), 20 steps each of
//     mse_loss(linear(X, W, b), Y); W and b after every step and every step's loss must match.
//   - LeNet: the state_dict of a PyTorch nn.Sequential LeNet loads with tg::load into the same
//     tg::Sequential; logits, cross_entropy and every parameter's grad must match PyTorch's.
//   - Round trip: tg::save then tg::load into a freshly initialized model restores every parameter bit
//     for bit. (That a file tg::save writes loads into PyTorch is checked by hand with
//     `/usr/bin/python3 tests/gen_fixtures_train.py --check FILE`.)
//
// A missing fixture file fails; nothing passes silently.
#include <doctest/doctest.h>
#include <unistd.h>  // getpid, for a temp file name no other test process uses

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tapegrad.hpp"
#include "test_util.hpp"

namespace {

using namespace test_util;

constexpr const char* kSgdFixturePath = TG_FIXTURE_DIR "/sgd_trajectories.json";
constexpr const char* kLenetJsonPath = TG_FIXTURE_DIR "/lenet_torch.json";
constexpr const char* kLenetWeightsPath = TG_FIXTURE_DIR "/lenet_torch.safetensors";
constexpr const char* kRegenerate = " (regenerate with /usr/bin/python3 tests/gen_fixtures_train.py)";

// Values, losses, logits and grads: |got - want| <= 1e-5 + 1e-4 * |want|.
// LeNet's conv weight grads each sum thousands of products in a different order than PyTorch's kernels, so
// 1e-5 + 1e-3 * |want| would be a defensible tolerance for them; measured, they agree to ~1e-6 relative
// (tapegrad vs PyTorch), so they are held to this tighter one, which also catches smaller bugs.
constexpr Tolerance kTol{1e-5f, 1e-4f};

// ---- reading the fixtures ------------------------------------------------------------------------

const Json& sgd_fixture() {
  static const Json doc = read_json(kSgdFixturePath);
  return doc;
}

const Json& lenet_fixture() {
  static const Json doc = read_json(kLenetJsonPath);
  return doc;
}

void check_scalar(float got, float want, const std::string& what) {
  INFO("comparing ", what);
  CHECK_MESSAGE(close(got, want, kTol), what, ": tapegrad ", got, ", PyTorch ", want);
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

// ---- LeNet ---------------------------------------------------------------------------------------

// The tapegrad twin of the generator's nn.Sequential; parameters "0.weight" ... "11.bias".
tg::Sequential lenet() {
  return tg::Sequential(tg::Conv2D(1, 6, 5, {.padding = {2, 2}}), tg::ReLU(), tg::MaxPool2D(2),
                        tg::Conv2D(6, 16, 5), tg::ReLU(), tg::MaxPool2D(2), tg::Flatten(),
                        tg::Linear(400, 120), tg::ReLU(), tg::Linear(120, 84), tg::ReLU(),
                        tg::Linear(84, 10));
}

const Json& require_lenet_fixture() {
  const Json& doc = lenet_fixture();
  INFO("fixture file: ", std::string(kLenetJsonPath), kRegenerate);
  REQUIRE_MESSAGE(doc.is_object(), "fixture file is missing or is not valid JSON");
  for (const char* key : {"input", "labels", "logits", "loss", "grads", "parameter_names"}) {
    REQUIRE_MESSAGE(doc.contains(key), "fixture file has no \"", key, "\"");
  }
  return doc;
}

// Loads the PyTorch LeNet weights into `model`; fails the test (with the tg::Error) if tg::load throws.
void load_torch_lenet(tg::Sequential& model) {
  INFO("weights file: ", std::string(kLenetWeightsPath), kRegenerate);
  try {
    tg::load(model, kLenetWeightsPath);
  } catch (const std::exception& e) {
    FAIL("tg::load threw: ", std::string(e.what()));
  }
}

// Bit-for-bit equality of two arrays (shape and every float's bits, so -0.f != 0.f and NaN == same NaN).
bool bitwise_equal(const tg::Array& a, const tg::Array& b) {
  if (a.shape() != b.shape()) return false;
  return std::equal(a.begin(), a.end(), b.begin(), [](float u, float v) {
    return std::bit_cast<std::uint32_t>(u) == std::bit_cast<std::uint32_t>(v);
  });
}

// A path in the temp directory that no other test process uses.
std::filesystem::path temp_checkpoint_path(const std::string& stem) {
  return std::filesystem::temp_directory_path() /
         ("tapegrad_" + stem + "_" + std::to_string(::getpid()) + ".safetensors");
}

// Removes a file when it goes out of scope, whether the test passed or not.
struct RemoveOnExit {
  std::filesystem::path path;
  ~RemoveOnExit() {
    std::error_code ignored;
    std::filesystem::remove(path, ignored);
  }
};

}  // namespace

TEST_CASE("SGD matches PyTorch's torch.optim.SGD step for step, for every option set") {
  const Json& doc = sgd_fixture();
  INFO("fixture file: ", std::string(kSgdFixturePath), kRegenerate);
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

TEST_CASE("a PyTorch LeNet state_dict loads with tg::load and gives PyTorch's logits, loss and grads") {
  const Json& doc = require_lenet_fixture();
  tg::manual_seed(0);
  tg::Sequential model = lenet();

  // The keys tg::load matches on are PyTorch's own.
  std::vector<std::string> names;
  for (const auto& [name, p] : model.named_parameters()) names.push_back(name);
  CHECK(names == doc.at("parameter_names").get<std::vector<std::string>>());

  load_torch_lenet(model);

  const tg::Tensor x(array_of(doc.at("input")));
  const std::vector<int> labels = doc.at("labels").get<std::vector<int>>();
  const tg::Tensor logits = model(x);
  check_close(logits.value(), doc.at("logits"), "logits");
  const tg::Tensor loss = tg::cross_entropy(logits, labels);
  check_scalar(loss.item(), doc.at("loss").get<float>(), "cross_entropy loss");

  loss.backward();
  const Json& grads = doc.at("grads");
  int checked = 0;
  for (const auto& named : model.named_parameters()) {
    const std::string& name = named.first;  // not a structured binding: INFO captures it in a lambda
    INFO("parameter ", name);
    REQUIRE_MESSAGE(grads.contains(name), "fixture has no grad for ", name);
    const tg::Array& g = named.second.grad();
    CHECK_MESSAGE(std::any_of(g.begin(), g.end(), [](float v) { return v != 0.f; }), "grad is all zeros");
    check_close(g, grads.at(name), "grad of " + name);
    ++checked;
  }
  CHECK(checked == 10);
}

TEST_CASE("a PyTorch LeNet file does not load into a model of other shapes: tg::Error, nothing changed") {
  tg::manual_seed(0);
  tg::Sequential model(tg::Conv2D(1, 6, 5, {.padding = {2, 2}}), tg::ReLU(), tg::MaxPool2D(2),
                       tg::Conv2D(6, 16, 5), tg::ReLU(), tg::MaxPool2D(2), tg::Flatten(),
                       tg::Linear(400, 120), tg::ReLU(), tg::Linear(120, 84), tg::ReLU(),
                       tg::Linear(84, 5));  // 5 classes, not 10
  std::vector<tg::Array> before;
  for (const tg::Tensor& p : model.parameters()) before.push_back(p.value());

  CHECK_THROWS_AS(tg::load(model, kLenetWeightsPath), tg::Error);

  const std::vector<tg::Tensor> after = model.parameters();
  REQUIRE(after.size() == before.size());
  for (std::size_t i = 0; i < after.size(); ++i) {
    INFO("parameter ", i);
    CHECK(bitwise_equal(after[i].value(), before[i]));  // the matching layers were not half-loaded
  }
}

TEST_CASE("a PyTorch LeNet saved with tg::save loads back into a fresh model bit for bit") {
  require_lenet_fixture();
  tg::manual_seed(0);
  tg::Sequential model = lenet();
  load_torch_lenet(model);

  const RemoveOnExit file{temp_checkpoint_path("lenet_roundtrip")};
  INFO("checkpoint: ", file.path.string());
  tg::save(model, file.path.string());
  REQUIRE(std::filesystem::exists(file.path));

  tg::manual_seed(12345);  // a different init, so a load that does nothing cannot pass
  tg::Sequential fresh = lenet();
  const auto saved = model.named_parameters();
  const auto loaded = fresh.named_parameters();
  REQUIRE(loaded.size() == saved.size());
  for (std::size_t i = 0; i < saved.size(); ++i) {
    INFO("parameter ", saved[i].first);
    CHECK_FALSE(bitwise_equal(loaded[i].second.value(), saved[i].second.value()));
  }

  tg::load(fresh, file.path.string());
  for (std::size_t i = 0; i < saved.size(); ++i) {
    INFO("parameter ", saved[i].first);
    CHECK(loaded[i].first == saved[i].first);
    CHECK(bitwise_equal(loaded[i].second.value(), saved[i].second.value()));
  }

  // And the loaded model computes what PyTorch computed.
  const Json& doc = lenet_fixture();
  const tg::Tensor logits = fresh(tg::Tensor(array_of(doc.at("input"))));
  check_close(logits.value(), doc.at("logits"), "logits of the reloaded model");
}
