// Checks tapegrad's conv2d, max_pool2d and a small Sequential CNN against PyTorch 1.13 reference numbers.
//
// The numbers live in tests/fixtures/conv_pool.json and tests/fixtures/small_cnn.json, written by
// tests/gen_fixtures_conv.py (`/usr/bin/python3 tests/gen_fixtures_conv.py`); these tests only read the
// JSON and never need torch.
//
// conv_pool.json has the case format of core_ops.json plus an "options" object: inputs, the op's output,
// a random grad_output, and the gradient of sum(output * grad_output) with respect to every input. For
// each case we rebuild the inputs as leaf tensors with requires_grad, run the tapegrad op, compare the
// output, backpropagate sum(out * grad_output) and compare every input's grad().
//
// small_cnn.json holds an nn.Sequential in eval mode: its state_dict, an input, labels, the logits, the
// mean cross-entropy loss and its gradient for every parameter and for the input. We build the same
// tg::Sequential, check its named_parameters() keys, load the weights and compare everything.
//
// A missing fixture file, an unknown op or a test with no cases fails; nothing passes silently.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <exception>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "tapegrad.hpp"
#include "test_util.hpp"

namespace {

using namespace test_util;

constexpr const char* kConvPoolPath = TG_FIXTURE_DIR "/conv_pool.json";
constexpr const char* kSmallCnnPath = TG_FIXTURE_DIR "/small_cnn.json";
constexpr const char* kRegenerate = "regenerate with /usr/bin/python3 tests/gen_fixtures_conv.py";

// ---- reading the fixtures ----------------------------------------------------------------------------

const Json& conv_pool_doc() {
  static const Json doc = read_json(kConvPoolPath);
  return doc;
}

const Json& small_cnn_doc() {
  static const Json doc = read_json(kSmallCnnPath);
  return doc;
}

// Fails the current test (and stops it) unless conv_pool.json loaded and has a non-empty case list.
const Json& require_cases() {
  const Json& doc = conv_pool_doc();
  INFO("fixture file: ", std::string(kConvPoolPath), " (", std::string(kRegenerate), ")");
  REQUIRE_MESSAGE(doc.is_object(), "fixture file is missing or is not valid JSON");
  REQUIRE_MESSAGE(doc.contains("cases"), "fixture file has no \"cases\"");
  REQUIRE(doc.at("cases").is_array());
  REQUIRE(!doc.at("cases").empty());
  return doc.at("cases");
}

// Fails the current test (and stops it) unless small_cnn.json loaded and has every expected key.
const Json& require_cnn() {
  const Json& doc = small_cnn_doc();
  INFO("fixture file: ", std::string(kSmallCnnPath), " (", std::string(kRegenerate), ")");
  REQUIRE_MESSAGE(doc.is_object(), "fixture file is missing or is not valid JSON");
  for (const char* key : {"state_dict", "input", "labels", "logits", "loss", "grads", "input_grad"}) {
    REQUIRE_MESSAGE(doc.contains(key), "fixture file has no \"", std::string(key), "\"");
  }
  return doc;
}

// ---- the ops, by fixture name ------------------------------------------------------------------------

std::array<int, 2> pair_of(const Json& options, const char* key) {
  const std::vector<int> v = options.at(key).get<std::vector<int>>();
  REQUIRE_MESSAGE(v.size() == 2, "option \"", std::string(key), "\" must have 2 values");
  return {v[0], v[1]};
}

bool is_same_padding(const Json& conv_options) {
  const Json& padding = conv_options.at("padding");
  return padding.is_string() && padding.get<std::string>() == "same";
}

// conv2d options from {"stride": [sh, sw], "padding": [ph, pw] or "same", "dilation": [dh, dw]}, spelled
// as a user would write them (API.md).
tg::Tensor run_conv2d(const tg::Tensor& x, const tg::Tensor& w, const tg::Tensor& b, const Json& o) {
  if (is_same_padding(o)) {
    // PyTorch allows padding='same' only with stride 1; the fixture says so explicitly.
    REQUIRE(pair_of(o, "stride") == std::array<int, 2>{1, 1});
    REQUIRE(pair_of(o, "dilation") == std::array<int, 2>{1, 1});
    return tg::conv2d(x, w, b, {.padding = tg::kSame});
  }
  const auto [sh, sw] = pair_of(o, "stride");
  const auto [ph, pw] = pair_of(o, "padding");
  const auto [dh, dw] = pair_of(o, "dilation");
  return tg::conv2d(x, w, b, {.stride = {sh, sw}, .padding = {ph, pw}, .dilation = {dh, dw}});
}

tg::Tensor run_max_pool2d(const tg::Tensor& x, const Json& o) {
  const auto [kh, kw] = pair_of(o, "kernel");
  const auto [sh, sw] = pair_of(o, "stride");
  const auto [ph, pw] = pair_of(o, "padding");
  return tg::max_pool2d(x, {.kernel = {kh, kw}, .stride = {sh, sw}, .padding = {ph, pw}});
}

using OpFn = std::function<tg::Tensor(const std::vector<tg::Tensor>&, const Json& options)>;

struct OpSpec {
  std::size_t n_inputs;  // tensor inputs in the fixture (conv2d: 3, or 2 when "bias" is false)
  OpFn run;
};

// Which TEST_CASE runs a case: conv2d with explicit padding or with "same"; max_pool2d with or without ties.
std::string family_of(const Json& c) {
  const std::string op = c.value("op", std::string());
  if (op == "conv2d") return is_same_padding(c.at("options")) ? "conv2d_same" : "conv2d";
  if (op == "max_pool2d") return c.value("ties", false) ? "max_pool2d_ties" : "max_pool2d";
  return op;
}

const std::set<std::string>& all_families() {
  static const std::set<std::string> families = {"conv2d", "conv2d_same", "max_pool2d", "max_pool2d_ties",
                                                 "conv2d_then_pool"};
  return families;
}

// The op of a case, or nullptr for an unknown op.
const OpSpec* op_of(const Json& c) {
  using In = const std::vector<tg::Tensor>&;
  using O = const Json&;
  static const OpSpec conv_bias{3, [](In t, O o) { return run_conv2d(t[0], t[1], t[2], o); }};
  static const OpSpec conv_nobias{2, [](In t, O o) { return run_conv2d(t[0], t[1], tg::Tensor{}, o); }};
  static const OpSpec pool{1, [](In t, O o) { return run_max_pool2d(t[0], o); }};
  static const OpSpec conv_then_pool{
      3, [](In t, O o) { return run_max_pool2d(run_conv2d(t[0], t[1], t[2], o.at("conv")), o.at("pool")); }};
  const std::string op = c.value("op", std::string());
  if (op == "conv2d") return c.at("options").value("bias", true) ? &conv_bias : &conv_nobias;
  if (op == "max_pool2d") return &pool;
  if (op == "conv2d_then_pool") return &conv_then_pool;
  return nullptr;
}

// Runs one fixture case: forward, output check, backward of sum(out * grad_output), grad checks.
void run_case(const Json& c, const OpSpec& spec) {
  check_fixture_case(c, spec.n_inputs, [&](const std::vector<tg::Tensor>& in) { return spec.run(in, c.at("options")); },
                     {"x", "weight", "bias"});
}

// Runs every case of one family; returns how many ran. An op that throws fails its case only.
int run_family(const std::string& family) {
  const Json& cases = require_cases();
  int ran = 0;
  for (const Json& c : cases) {
    const OpSpec* spec = op_of(c);
    if (spec == nullptr || family_of(c) != family) continue;  // unknown ops: see the first TEST_CASE
    const std::string name = c.value("name", std::string("<unnamed>"));
    INFO("fixture case: ", name, " (op ", c.value("op", std::string()), ", options ", c.at("options").dump(),
         ")");
    try {
      run_case(c, *spec);
    } catch (const std::exception& e) {
      FAIL_CHECK("threw: ", std::string(e.what()));
    }
    ++ran;
  }
  return ran;
}

// ---- the small CNN -----------------------------------------------------------------------------------

// The model of small_cnn.json (see gen_fixtures_conv.py), in eval mode.
tg::Sequential make_small_cnn() {
  tg::Sequential model(tg::Conv2D(1, 4, 3, {.padding = {1, 1}}), tg::ReLU(), tg::MaxPool2D(2),
                       tg::Conv2D(4, 6, 3), tg::Tanh(), tg::MaxPool2D(2), tg::Flatten(), tg::Linear(24, 16),
                       tg::LeakyReLU(0.01f), tg::Dropout(0.5f), tg::Linear(16, 10));
  model.eval();
  return model;
}

// Overwrites every parameter with the fixture's state_dict tensor of its name; names and order must match.
void load_state_dict(tg::Sequential& model, const Json& state_dict) {
  const auto named = model.named_parameters();
  REQUIRE(named.size() == state_dict.size());
  for (std::size_t i = 0; i < named.size(); ++i) {
    const auto& [name, p] = named[i];
    const Json& entry = state_dict.at(i);
    INFO("parameter ", i, ": tapegrad \"", name, "\", PyTorch \"", entry.at("name").get<std::string>(), "\"");
    REQUIRE(name == entry.at("name").get<std::string>());
    REQUIRE(tg::shape_str(p.shape()) == tg::shape_str(shape_of(entry)));
  }
  for (auto& [name, p] : model.named_parameters()) {
    const auto it = std::find_if(state_dict.begin(), state_dict.end(),
                                 [&name = name](const Json& e) { return e.at("name") == name; });
    REQUIRE(it != state_dict.end());
    p.value() = array_of(*it);
  }
}

}  // namespace

TEST_CASE("PyTorch conv/pool fixture file is present and every case names a known op") {
  const Json& cases = require_cases();
  std::set<std::string> names;
  std::set<std::string> families_seen;
  for (const Json& c : cases) {
    const std::string name = c.value("name", std::string());
    INFO("fixture case: ", name);
    CHECK(!name.empty());
    CHECK_MESSAGE(names.insert(name).second, "duplicate case name");
    const std::string op = c.value("op", std::string());
    const bool known = op_of(c) != nullptr;
    CHECK_MESSAGE(known, "unknown op \"", op, "\": add it to op_of()");
    CHECK_MESSAGE(c.contains("options"), "case has no \"options\"");
    if (known) families_seen.insert(family_of(c));
  }
  // Every family has its own TEST_CASE below; each must have something to run.
  for (const std::string& family : all_families()) {
    CHECK_MESSAGE(families_seen.count(family) == 1, "no fixture case for family ", family);
  }
}

TEST_CASE("conv2d matches PyTorch: stride, padding, dilation, rectangular kernels, 128 filters, no bias") {
  const int ran = run_family("conv2d");
  CHECK(ran >= 1);
}

TEST_CASE("conv2d with padding tg::kSame matches PyTorch padding='same', odd and even kernels") {
  const int ran = run_family("conv2d_same");
  CHECK(ran >= 1);
}

TEST_CASE("max_pool2d matches PyTorch: overlapping windows, -inf padding, rectangular windows") {
  const int ran = run_family("max_pool2d");
  CHECK(ran >= 1);
}

TEST_CASE("max_pool2d routes the gradient to the first maximum of a window on ties, as PyTorch") {
  const int ran = run_family("max_pool2d_ties");
  CHECK(ran >= 1);
}

TEST_CASE("conv2d then max_pool2d matches PyTorch, gradients for x, weight and bias") {
  const int ran = run_family("conv2d_then_pool");
  CHECK(ran >= 1);
}

TEST_CASE("PyTorch small CNN: Sequential names, logits, cross-entropy loss and all gradients match") {
  const Json& doc = require_cnn();
  tg::Sequential model = make_small_cnn();

  // named_parameters() keys are PyTorch's state_dict keys, in the same order.
  std::vector<std::string> want_names;
  for (const Json& entry : doc.at("state_dict")) want_names.push_back(entry.at("name").get<std::string>());
  std::vector<std::string> got_names;
  for (const auto& [name, p] : model.named_parameters()) got_names.push_back(name);
  CHECK(got_names == want_names);
  REQUIRE(got_names.size() == want_names.size());

  load_state_dict(model, doc.at("state_dict"));
  tg::Tensor x(array_of(doc.at("input")), /*requires_grad=*/true);
  const std::vector<int> labels = doc.at("labels").get<std::vector<int>>();

  const tg::Tensor logits = model(x);
  check_close(logits.value(), doc.at("logits"), "logits");
  const tg::Tensor loss = tg::cross_entropy(logits, labels);
  const float want_loss = doc.at("loss").get<float>();
  CHECK_MESSAGE(close(loss.item(), want_loss),
                "loss: tapegrad ", loss.item(), ", PyTorch ", want_loss);

  loss.backward();
  int grads_checked = 0;
  for (const auto& [name, p] : model.named_parameters()) {
    INFO("parameter ", name);
    REQUIRE_MESSAGE(doc.at("grads").contains(name), "fixture has no gradient for ", name);
    check_close(p.grad(), doc.at("grads").at(name), "grad of " + name);
    ++grads_checked;
  }
  CHECK(grads_checked == static_cast<int>(want_names.size()));
  CHECK(grads_checked >= 1);
  check_close(x.grad(), doc.at("input_grad"), "grad of the input");
}

TEST_CASE("PyTorch small CNN: Dropout zeroes activations in train mode and is the identity in eval mode") {
  const Json& doc = require_cnn();
  tg::Sequential model = make_small_cnn();
  load_state_dict(model, doc.at("state_dict"));
  const tg::Tensor x(array_of(doc.at("input")));
  tg::NoGradGuard no_grad;

  // The activations that reach Dropout (layer 9): run layers 0..8 one by one.
  tg::Tensor h = x;
  h = model.at<tg::Conv2D>(0)(h);
  h = model.at<tg::ReLU>(1)(h);
  h = model.at<tg::MaxPool2D>(2)(h);
  h = model.at<tg::Conv2D>(3)(h);
  h = model.at<tg::Tanh>(4)(h);
  h = model.at<tg::MaxPool2D>(5)(h);
  h = model.at<tg::Flatten>(6)(h);
  h = model.at<tg::Linear>(7)(h);
  h = model.at<tg::LeakyReLU>(8)(h);
  tg::Dropout& dropout = model.at<tg::Dropout>(9);
  const tg::Array& before = h.value();
  REQUIRE(before.size() == 3 * 16);

  // Eval: identity, and the whole model reproduces the PyTorch logits.
  CHECK(dropout(h).value() == before);
  const tg::Array eval_logits = model(x).value();
  check_close(eval_logits, doc.at("logits"), "eval-mode logits");

  // Train: with p = 0.5 over 48 activations, some are zeroed and the others scaled by 1 / (1 - p) = 2.
  model.train();
  tg::manual_seed(7);
  const tg::Array after = dropout(h).value();
  REQUIRE(after.shape() == before.shape());
  int zeroed = 0;
  int kept = 0;
  for (std::size_t i = 0; i < before.size(); ++i) {
    const float b = before.flat(i);
    const float a = after.flat(i);
    INFO("activation ", i, ": before ", b, ", after ", a);
    if (a == 0.f && b != 0.f) {
      ++zeroed;
    } else {
      CHECK(a == doctest::Approx(2.f * b));
      ++kept;
    }
  }
  CHECK(zeroed >= 1);
  CHECK(kept >= 1);

  // And the train-mode model's logits differ from eval mode's.
  const tg::Array train_logits = model(x).value();
  REQUIRE(train_logits.shape() == eval_logits.shape());
  float max_diff = 0.f;
  for (std::size_t i = 0; i < eval_logits.size(); ++i) {
    max_diff = std::max(max_diff, std::fabs(train_logits.flat(i) - eval_logits.flat(i)));
  }
  CHECK_MESSAGE(max_diff > 1e-4f, "train-mode logits equal eval-mode logits: Dropout did nothing");

  // Back to eval: PyTorch's numbers again.
  model.eval();
  check_close(model(x).value(), doc.at("logits"), "logits after train() then eval()");
}
