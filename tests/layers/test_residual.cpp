// tg::Residual (layers/residual.hpp): body(x) + x and body(x) + shortcut(x), state keys under "I.body.J" and
// "I.shortcut.J", shape checks without broadcasting, train/eval, summary, save/load, nested names on the
// tape, and a small residual net against PyTorch (tests/gen_fixtures_residual.py).
#include <doctest/doctest.h>

#include <chrono>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "fixture_runner.hpp"
#include "tapegrad.hpp"
#include "test_util.hpp"

using tg::Array;
using tg::Tensor;
using namespace test_util;

namespace {

std::vector<std::string> keys_of(const std::vector<std::pair<std::string, Tensor>>& named) {
  std::vector<std::string> keys;
  for (const auto& [name, t] : named) keys.push_back(name);
  return keys;
}

// Residual(Linear(2, 2) -> ReLU), weights set by hand.
tg::Residual linear_block() {
  tg::Sequential body;
  auto& lin = body.add(tg::Linear(2, 2));
  lin.weight.value() = Array{{1.f, 2.f}, {-1.f, 0.5f}};
  lin.bias.value() = Array{0.5f, -3.f};
  body.add(tg::ReLU());
  return tg::Residual(std::move(body));
}

// The small net of the fixture, in C++: stem, identity block, relu6, projection block, head.
tg::Sequential small_net() {
  tg::Sequential model;
  model.add(tg::Conv2D(3, 4, 3, {.padding = {1, 1}}));
  model.add(tg::ReLU());
  tg::Sequential body;
  body.add(tg::Conv2D(4, 4, 3, {.padding = {1, 1}}, false));
  body.add(tg::BatchNorm2d(4));
  body.add(tg::ReLU());
  body.add(tg::Conv2D(4, 4, 3, {.padding = {1, 1}}, false));
  body.add(tg::BatchNorm2d(4));
  model.add(tg::Residual(std::move(body)));
  model.add(tg::ReLU6());
  tg::Sequential body2, shortcut;
  body2.add(tg::Conv2D(4, 8, 3, {.stride = {2, 2}, .padding = {1, 1}}, false));
  body2.add(tg::BatchNorm2d(8));
  body2.add(tg::ReLU6());
  body2.add(tg::Conv2D(8, 8, 3, {.padding = {1, 1}}));
  shortcut.add(tg::Conv2D(4, 8, 1, {.stride = {2, 2}}, false));
  shortcut.add(tg::BatchNorm2d(8));
  model.add(tg::Residual(std::move(body2), std::move(shortcut)));
  model.add(tg::GlobalAvgPool2D());
  model.add(tg::Linear(8, 3));
  return model;
}

const Json& residual_fixture() {
  const Json& doc = fixture("residual_torch.json");
  INFO("fixture file: ", fixture_path("residual_torch.json"),
       " (regenerate: tests/gen_fixtures_residual.py)");
  REQUIRE_MESSAGE(doc.is_object(), "fixture file is missing or is not valid JSON");
  return doc;
}

void load_fixture_state(tg::Module& model, const Json& state) {
  for (auto& [name, t] : model.named_state()) {
    INFO("state key ", name);
    REQUIRE(state.contains(name));
    t.value() = array_of(state.at(name));
  }
}

}  // namespace

TEST_CASE("Residual forward is body(x) + x; backward adds the identity's gradient to the body's") {
  tg::Residual block = linear_block();
  Tensor x(Array{{1.f, 1.f}, {2.f, -1.f}}, true);
  const Tensor y = block(x);
  // body: relu(x W^T + b): row 0: relu([3.5, -3.5]) = [3.5, 0]; row 1: relu([0.5, -5.5]) = [0.5, 0]
  CHECK(y.value() == Array{{4.5f, 1.f}, {2.5f, -1.f}});
  tg::sum(y).backward();
  // d/dx = 1 (identity) + relu'(.) W: only output 0 is active in both rows: W[0] = [1, 2]
  CHECK(x.grad() == Array{{2.f, 3.f}, {2.f, 3.f}});
  auto& lin = block.body().at<tg::Linear>(0);
  CHECK(lin.weight.grad() == Array{{3.f, 0.f}, {0.f, 0.f}});
  CHECK(lin.bias.grad() == Array{2.f, 0.f});
  tg::clear_tape();
}

TEST_CASE("Residual with a shortcut computes body(x) + shortcut(x)") {
  tg::Sequential body, shortcut;
  body.add(tg::Linear(2, 3));
  shortcut.add(tg::Linear(2, 3, false));
  tg::Residual block(std::move(body), std::move(shortcut));
  Tensor x(Array{{1.f, -2.f}});
  const Array want = block.body()(x).value() + block.shortcut()(x).value();
  CHECK(block(x).value() == want);
  CHECK(block.output_shape({2}) == tg::Shape{3});
  tg::clear_tape();
}

TEST_CASE("gradcheck through a residual block with a shortcut: the input and every parameter") {
  tg::Sequential body, shortcut;
  body.add(tg::Conv2D(2, 3, 3, {.padding = {1, 1}}));
  body.add(tg::Tanh());
  shortcut.add(tg::Conv2D(2, 3, 1));
  tg::Residual block(std::move(body), std::move(shortcut));
  std::vector<Tensor> inputs = {param({2, 2, 4, 4}, 7)};
  for (const Tensor& p : block.parameters()) inputs.push_back(p);  // the same nodes: gradcheck moves them
  check_gradients([&block](const std::vector<Tensor>& in) { return block(in[0]); }, inputs);
}

TEST_CASE(
    "Residual state keys nest under body and shortcut as PyTorch's state_dict, no shortcut keys without "
    "one") {
  tg::Sequential model = small_net();
  const std::vector<std::string> params = keys_of(model.named_parameters());
  const std::vector<std::string> want = {
      "0.weight",          "0.bias",          "2.body.0.weight", "2.body.1.weight",     "2.body.1.bias",
      "2.body.3.weight",   "2.body.4.weight", "2.body.4.bias",   "4.body.0.weight",     "4.body.1.weight",
      "4.body.1.bias",     "4.body.3.weight", "4.body.3.bias",   "4.shortcut.0.weight", "4.shortcut.1.weight",
      "4.shortcut.1.bias", "6.weight",        "6.bias"};
  CHECK(params == want);
  const std::vector<std::string> buffers = keys_of(model.named_buffers());
  CHECK(buffers.front() == "2.body.1.running_mean");
  CHECK(buffers.back() == "4.shortcut.1.num_batches_tracked");
}

TEST_CASE("Residual refuses unequal shapes with both shapes, never broadcasting") {
  tg::Sequential body;
  body.add(tg::Conv2D(4, 8, 1));
  tg::Residual block(std::move(body));
  CHECK_THROWS_WITH_AS(
      block.output_shape({4, 5, 5}),
      doctest::Contains("the body gives [8, 5, 5] but the identity shortcut passes the input "
                        "[4, 5, 5]"),
      tg::Error);
  // [N, 1, H, W] + [N, C, H, W] would broadcast in an elementwise add; a residual refuses it at run time.
  tg::Sequential narrow;
  narrow.add(tg::Conv2D(4, 1, 1));
  tg::Sequential model;
  model.add(tg::Residual(std::move(narrow)));
  CHECK_THROWS_WITH_AS(model(Tensor(xt::zeros<float>({2, 4, 3, 3}))),
                       doctest::Contains("the body gives [2, 1, 3, 3] but the identity shortcut passes the "
                                         "input [2, 4, 3, 3]"),
                       tg::Error);
  CHECK_THROWS_AS(tg::Residual(tg::Sequential()), tg::Error);
  tg::Sequential one;
  one.add(tg::ReLU());
  CHECK_THROWS_AS(tg::Residual(std::move(one), tg::Sequential()), tg::Error);
  tg::clear_tape();
}

TEST_CASE("train() and eval() reach the layers inside a residual block") {
  tg::Sequential model = small_net();
  model.eval();
  CHECK_FALSE(model.at<tg::Residual>(4).shortcut()[1].is_training());
  CHECK_FALSE(model.at<tg::Residual>(2).body()[1].is_training());
  model.train();
  CHECK(model.at<tg::Residual>(4).shortcut()[1].is_training());
}

TEST_CASE("summary shows a residual block, its output shape and its parameters") {
  tg::Sequential model = small_net();
  const std::string s = model.summary({2, 3, 6, 6});
  INFO(s);
  CHECK(s.find("Residual(body 5 layers, identity)") != std::string::npos);
  CHECK(s.find("Residual(body 4 layers, shortcut 2 layers)") != std::string::npos);
  CHECK(s.find("[2, 8, 3, 3]") != std::string::npos);
  CHECK(s.find("total parameters: " + tg::with_commas(model.num_parameters())) != std::string::npos);
}

TEST_CASE("a model with residual blocks saves and loads its state under the nested keys") {
  const ScopedSeed seed(4);
  tg::Sequential a = small_net();
  tg::Sequential b = small_net();  // other initial weights
  TempDir dir;
  const std::string path = (dir.path / "res.safetensors").string();
  tg::save(a, path);
  tg::load(b, path);
  const auto sa = a.named_state(), sb = b.named_state();
  REQUIRE(sa.size() == sb.size());
  for (std::size_t i = 0; i < sa.size(); ++i) {
    CHECK(sa[i].first == sb[i].first);
    CHECK(sa[i].second.value() == sb[i].second.value());
  }
}

TEST_CASE("the tape names a layer inside a residual block by its whole path, as its state key") {
  ClearTapeOnExit clear;
  tg::Sequential model = small_net();
  (void)model(Tensor(xt::ones<float>({1, 3, 6, 6}), true));
  std::ostringstream tape;
  tg::print_tape(tape);
  INFO(tape.str());
  CHECK(tape.str().find("[2.body.0.Conv2D] conv2d(") != std::string::npos);
  CHECK(tape.str().find("[4.shortcut.1.BatchNorm2d] ") != std::string::npos);
  CHECK(tape.str().find("[4.Residual] add(") != std::string::npos);
  CHECK(tape.str().find("[0.Conv2D] conv2d(") != std::string::npos);
}

TEST_CASE("an error inside a residual block names the layer by its whole path, once") {
  tg::Sequential body;
  body.add(tg::Linear(3, 3));
  tg::Sequential model;
  model.add(tg::ReLU());
  model.add(tg::Residual(std::move(body)));
  try {
    (void)model(Tensor(xt::zeros<float>({2, 4})));
    FAIL("no error");
  } catch (const tg::Error& e) {
    const std::string what = e.what();
    INFO(what);
    CHECK(what.rfind("layer 1.body.0 Linear(3 -> 3): ", 0) == 0);
    CHECK(what.find("layer 1 ") == std::string::npos);
  }
  tg::clear_tape();
}

TEST_CASE("PyTorch: a small residual net's logits, loss, gradients and running statistics match") {
  const Json& doc = residual_fixture();
  const Json& net = doc.at("small_net");
  tg::Sequential model = small_net();
  std::vector<std::string> want_keys = net.at("state_keys").get<std::vector<std::string>>();
  CHECK(keys_of(model.named_state()) == want_keys);
  load_fixture_state(model, net.at("state"));
  Tensor x(array_of(net.at("input")), true);
  const Tensor logits = model(x);
  check_close(logits.value(), net.at("logits"), "logits");
  const Tensor loss = tg::cross_entropy(logits, net.at("labels").get<std::vector<int>>());
  CHECK(loss.item() == doctest::Approx(net.at("loss").get<float>()).epsilon(1e-5));
  loss.backward();
  for (const auto& [name, p] : model.named_parameters())
    check_close(p.grad(), net.at("grads").at(name), name);
  check_close(x.grad(), net.at("input_grad"), "input grad");
  for (const auto& [name, b] : model.named_buffers()) {
    check_close(b.value(), net.at("buffers_after").at(name), name);
  }
}

TEST_CASE("a block's output keeps the name of its innermost layer; the add is named by the block") {
  ClearTapeOnExit clear;
  tg::Sequential model = small_net();
  const Tensor x(xt::ones<float>({1, 3, 6, 6}));
  std::ostringstream tape;
  (void)model(x);
  tg::print_tape(tape);
  INFO(tape.str());
  CHECK(tape.str().find("add([1, 4, 6, 6] 2.body.4.BatchNorm2d, [1, 4, 6, 6] 1.ReLU)") != std::string::npos);
  CHECK(tape.str().find("[3.ReLU6] relu6([1, 4, 6, 6] 2.Residual)") != std::string::npos);
}

TEST_CASE("the profiler's layer table names a layer inside a residual block by its whole path") {
  ClearTapeOnExit clear;
  tg::Sequential model = small_net();
  tg::reset_profile();
  {
    const ScopedProfiling profiling(true);
    tg::sum(model(Tensor(xt::ones<float>({1, 3, 6, 6}), true))).backward();
  }
  const std::string report = tg::profile_report();
  tg::reset_profile();
  INFO(report);
  CHECK(report.find("2.body.0.Conv2D") != std::string::npos);
  CHECK(report.find("4.shortcut.0.Conv2D") != std::string::npos);
  CHECK(report.find("4.Residual") != std::string::npos);
}

namespace {

// The sum of the "forward ms" column of the profile report's layer table.
double layer_forward_ms(const std::string& report) {
  std::istringstream lines(report);
  std::string line;
  bool in_layers = false;
  double sum = 0;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string name;
    double calls = 0, forward = 0;
    fields >> name;
    if (name == "op" || name == "layer") {
      in_layers = name == "layer";
    } else if (in_layers && fields >> calls >> forward) {
      sum += forward;
    }
  }
  return sum;
}

}  // namespace

TEST_CASE(
    "the profiler gives a residual block its own time, not its body's: the layer rows add up to the "
    "forward") {
  ClearTapeOnExit clear;
  tg::Sequential body;
  for (int i = 0; i < 4; ++i) {
    body.add(tg::Conv2D(32, 32, 3, {.padding = {1, 1}}));
    body.add(tg::ReLU());
  }
  tg::Sequential model;
  model.add(tg::Residual(std::move(body)));
  const Tensor x(xt::ones<float>({8, 32, 32, 32}), false);
  tg::reset_profile();
  double wall_ms = 0;
  {
    const ScopedProfiling profiling(true);
    const auto start = std::chrono::steady_clock::now();
    const Tensor y = model(x);
    wall_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  }
  const std::string report = tg::profile_report();
  tg::reset_profile();
  INFO(report);
  INFO("forward wall time ", wall_ms, " ms");
  // Counting the body inside the block's row too would make the rows about twice the forward.
  CHECK(layer_forward_ms(report) <= 1.1 * wall_ms + 1.0);
  CHECK(layer_forward_ms(report) >= 0.5 * wall_ms);
}

TEST_CASE("docs/examples/plain20.tg is resnet20.tg without its blocks: the same layers in the same order") {
  const std::string dir = std::string(TAPEGRAD_SOURCE_DIR);
  tg::Sequential plain = tg::model_from_file(dir + "/docs/examples/plain20.tg", {1, 28, 28}, 10);
  tg::Sequential resnet = tg::model_from_file(dir + "/apps/models/resnet20.tg", {1, 28, 28}, 10);
  CHECK(plain.num_parameters() == 269434);
  // resnet20's modules outside the shortcut sections, in order, by type (a Residual by its body's).
  std::vector<std::string> chain;
  const std::function<void(const tg::Sequential&)> walk = [&](const tg::Sequential& s) {
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (const auto* block = dynamic_cast<const tg::Residual*>(&s[i])) {
        walk(block->body());
      } else {
        chain.push_back(s[i].describe());
      }
    }
  };
  walk(resnet);
  std::vector<std::string> plain_chain;
  for (std::size_t i = 0; i < plain.size(); ++i) plain_chain.push_back(plain[i].describe());
  CHECK(plain_chain == chain);
  CHECK(plain_chain.size() == 59);  // 19 convs, 19 batch norms, 19 ReLUs, pool, linear
}
