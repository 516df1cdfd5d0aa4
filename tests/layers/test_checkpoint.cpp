// Checkpoints (layers/checkpoint.hpp): save and load round trips with optimizer state and metadata, models of
// another architecture, and PyTorch's own LeNet state_dict (tests/fixtures/lenet_torch.{safetensors,json},
// written by /usr/bin/python3 tests/gen_fixtures_train.py): it loads with tg::load and gives PyTorch's
// logits, loss and gradients. (That a file tg::save writes loads into PyTorch is checked by hand with
// `/usr/bin/python3 tests/gen_fixtures_train.py --check FILE`.)
#include <doctest/doctest.h>
#include <unistd.h>  // getpid, for a temp file name no other test process uses

#include <algorithm>
#include <bit>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

#include "fixture_runner.hpp"
#include "tapegrad.hpp"
#include "test_util.hpp"

using namespace test_util;
using tg::Array;
using tg::Tensor;

namespace {

constexpr const char* kLenetJsonPath = TG_FIXTURE_DIR "/lenet_torch.json";
constexpr const char* kLenetWeightsPath = TG_FIXTURE_DIR "/lenet_torch.safetensors";
constexpr const char* kRegenerateCheckpoint =
    " (regenerate with /usr/bin/python3 tests/gen_fixtures_train.py)";

// LeNet's conv weight grads each sum thousands of products in a different order than PyTorch's kernels, so
// 1e-5 + 1e-3 * |want| would be a defensible tolerance for them; measured, they agree to ~1e-6 relative
// (tapegrad vs PyTorch), so they are held to the default 1e-5 + 1e-4 * |want|, which also catches smaller
// bugs.
constexpr Tolerance kTolCheckpoint{1e-5f, 1e-4f};

void check_scalar(float got, float want, const std::string& what) {
  INFO("comparing ", what);
  CHECK_MESSAGE(close(got, want, kTolCheckpoint), what, ": tapegrad ", got, ", PyTorch ", want);
}

tg::Sequential small_model() { return tg::Sequential(tg::Linear(4, 3), tg::ReLU(), tg::Linear(3, 2)); }

const Json& lenet_fixture() { return fixture("lenet_torch.json"); }

// ---- LeNet ---------------------------------------------------------------------------------------

const Json& require_lenet_fixture() {
  const Json& doc = lenet_fixture();
  INFO("fixture file: ", std::string(kLenetJsonPath), kRegenerateCheckpoint);
  REQUIRE_MESSAGE(doc.is_object(), "fixture file is missing or is not valid JSON");
  for (const char* key : {"input", "labels", "logits", "loss", "grads", "parameter_names"}) {
    REQUIRE_MESSAGE(doc.contains(key), "fixture file has no \"", key, "\"");
  }
  return doc;
}

// Loads the PyTorch LeNet weights into `model`; fails the test (with the tg::Error) if tg::load throws.
void load_torch_lenet(tg::Sequential& model) {
  INFO("weights file: ", std::string(kLenetWeightsPath), kRegenerateCheckpoint);
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

TEST_CASE("save then load restores every parameter bit for bit, with optimizer state and metadata") {
  TempDir dir;
  const ScopedSeed seed(1);
  tg::Sequential a = small_model();
  tg::SGD opt(a.parameters(), {.lr = 0.1f, .momentum = 0.9f});
  tg::cross_entropy(a(Tensor(xt::ones<float>({2, 4}))), {0, 1}).backward();
  opt.step();
  tg::save(a, dir.file("m.safetensors"), {opt.state(), {{"epoch", "3"}}});

  tg::manual_seed(2);  // inside the ScopedSeed above
  tg::Sequential b = small_model();
  tg::SGD opt_b(b.parameters(), {.lr = 0.1f, .momentum = 0.9f});
  const tg::TrainingState state = tg::load(b, dir.file("m.safetensors"));
  opt_b.load_state(state.optimizer);
  CHECK(state.metadata.at("epoch") == "3");
  const auto pa = a.named_parameters(), pb = b.named_parameters();
  for (std::size_t i = 0; i < pa.size(); ++i) {
    CHECK(pa[i].first == pb[i].first);
    CHECK(pa[i].second.value() == pb[i].second.value());
  }
  REQUIRE(opt_b.state().size() == opt.state().size());
  for (std::size_t i = 0; i < opt.state().size(); ++i)
    CHECK(opt_b.state()[i].second == opt.state()[i].second);
}

TEST_CASE("load rejects a checkpoint of another architecture and leaves the model unchanged") {
  TempDir dir;
  tg::Sequential other(tg::Linear(4, 5), tg::ReLU(), tg::Linear(5, 2));
  tg::save(other, dir.file("other.safetensors"));
  tg::Sequential model = small_model();
  const Array before = model.at<tg::Linear>(0).weight.value();
  CHECK_THROWS_WITH_AS(tg::load(model, dir.file("other.safetensors")),
                       doctest::Contains("tensor '0.weight' has shape [5, 4], the model expects [3, 4]"),
                       tg::Error);
  CHECK(model.at<tg::Linear>(0).weight.value() == before);

  tg::Sequential fewer(tg::Linear(4, 3));
  tg::save(fewer, dir.file("fewer.safetensors"));
  CHECK_THROWS_WITH_AS(tg::load(model, dir.file("fewer.safetensors")),
                       doctest::Contains("missing tensor '2.weight'"), tg::Error);
  tg::Sequential more(tg::Linear(4, 3), tg::ReLU(), tg::Linear(3, 2), tg::Linear(2, 2));
  tg::save(more, dir.file("more.safetensors"));
  CHECK_THROWS_WITH_AS(tg::load(model, dir.file("more.safetensors")),
                       doctest::Contains("unexpected tensor '3."), tg::Error);
}

TEST_CASE("a PyTorch LeNet state_dict loads with tg::load and gives PyTorch's logits, loss and grads") {
  const Json& doc = require_lenet_fixture();
  const ScopedSeed seed(0);
  tg::Sequential model = cpp_model("lenet");

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
  const ScopedSeed seed(0);
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
  const ScopedSeed seed(0);
  tg::Sequential model = cpp_model("lenet");
  load_torch_lenet(model);

  const RemoveOnExit file{temp_checkpoint_path("lenet_roundtrip")};
  INFO("checkpoint: ", file.path.string());
  tg::save(model, file.path.string());
  REQUIRE(std::filesystem::exists(file.path));

  tg::manual_seed(12345);  // a different init, so a load that does nothing cannot pass
  tg::Sequential fresh = cpp_model("lenet");
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
