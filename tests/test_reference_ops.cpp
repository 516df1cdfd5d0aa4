// Checks tapegrad's core ops against PyTorch 1.13 reference numbers.
//
// The numbers live in tests/fixtures/core_ops.json, written by tests/gen_fixtures.py
// (`/usr/bin/python3 tests/gen_fixtures.py`); these tests only read the JSON and never need torch.
// Each case holds inputs, the op's output, a random grad_output, and the gradient of
// sum(output * grad_output) with respect to every input. For each case we rebuild the inputs as
// leaf tensors with requires_grad, run the tapegrad op, compare the output, backpropagate
// sum(out * grad_output) and compare every input's grad().
//
// A missing fixture file, an unknown op or a family with no cases fails; nothing passes silently.
#include <doctest/doctest.h>

#include <algorithm>
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
#include <vector>

#include "tapegrad.hpp"
#include "test_util.hpp"

namespace {

using namespace test_util;

constexpr const char* kFixturePath = TG_FIXTURE_DIR "/core_ops.json";

// ---- reading the fixture -----------------------------------------------------------------

// The parsed fixture file, or a null JSON value when it is missing or unreadable (tests then fail).
const Json& fixture() {
  static const Json doc = read_json(kFixturePath);
  return doc;
}

// Fails the current test (and stops it) unless the fixture loaded and has a non-empty case list.
const Json& require_cases() {
  const Json& doc = fixture();
  INFO("fixture file: ", std::string(kFixturePath),
       " (regenerate with /usr/bin/python3 tests/gen_fixtures.py)");
  REQUIRE_MESSAGE(doc.is_object(), "fixture file is missing or is not valid JSON");
  REQUIRE_MESSAGE(doc.contains("cases"), "fixture file has no \"cases\"");
  REQUIRE(doc.at("cases").is_array());
  REQUIRE(!doc.at("cases").empty());
  return doc.at("cases");
}

// ---- the ops, by fixture name ------------------------------------------------------------

using OpFn = std::function<tg::Tensor(const std::vector<tg::Tensor>&, const Json&)>;

struct OpSpec {
  std::string family;    // which TEST_CASE runs it
  std::size_t n_inputs;  // tensor inputs in the fixture
  OpFn run;
};

float scalar_of(const Json& c) { return c.at("scalar").get<float>(); }

// tg::reshape takes the new shape as a braced list (API.md: `tg::reshape(x, {-1, 4})`); the fixture
// gives it as a JSON array.
tg::Tensor reshape_to(const tg::Tensor& x, const Json& new_shape) {
  const std::vector<int> s = new_shape.get<std::vector<int>>();
  switch (s.size()) {
    case 1:
      return tg::reshape(x, {s[0]});
    case 2:
      return tg::reshape(x, {s[0], s[1]});
    case 3:
      return tg::reshape(x, {s[0], s[1], s[2]});
    case 4:
      return tg::reshape(x, {s[0], s[1], s[2], s[3]});
    default:
      FAIL("reshape fixture with ", s.size(), " dims is not supported by this test");
  }
  return {};
}

const std::map<std::string, OpSpec>& op_table() {
  using In = const std::vector<tg::Tensor>&;
  using C = const Json&;
  static const std::map<std::string, OpSpec> table = {
      {"add", {"binary", 2, [](In t, C) { return t[0] + t[1]; }}},
      {"sub", {"binary", 2, [](In t, C) { return t[0] - t[1]; }}},
      {"mul", {"binary", 2, [](In t, C) { return t[0] * t[1]; }}},
      {"div", {"binary", 2, [](In t, C) { return t[0] / t[1]; }}},

      {"add_scalar", {"scalar", 1, [](In t, C c) { return t[0] + scalar_of(c); }}},
      {"sub_scalar", {"scalar", 1, [](In t, C c) { return t[0] - scalar_of(c); }}},
      {"rsub_scalar", {"scalar", 1, [](In t, C c) { return scalar_of(c) - t[0]; }}},
      {"mul_scalar", {"scalar", 1, [](In t, C c) { return t[0] * scalar_of(c); }}},
      {"div_scalar", {"scalar", 1, [](In t, C c) { return t[0] / scalar_of(c); }}},
      {"rdiv_scalar", {"scalar", 1, [](In t, C c) { return scalar_of(c) / t[0]; }}},
      {"neg", {"scalar", 1, [](In t, C) { return -t[0]; }}},

      {"matmul", {"matmul", 2, [](In t, C) { return tg::matmul(t[0], t[1]); }}},

      {"relu", {"unary", 1, [](In t, C) { return tg::relu(t[0]); }}},
      {"sigmoid", {"unary", 1, [](In t, C) { return tg::sigmoid(t[0]); }}},
      {"tanh", {"unary", 1, [](In t, C) { return tg::tanh(t[0]); }}},
      {"exp", {"unary", 1, [](In t, C) { return tg::exp(t[0]); }}},
      {"log", {"unary", 1, [](In t, C) { return tg::log(t[0]); }}},

      {"sum", {"reduction", 1, [](In t, C) { return tg::sum(t[0]); }}},
      {"mean", {"reduction", 1, [](In t, C) { return tg::mean(t[0]); }}},

      {"reshape", {"shape", 1, [](In t, C c) { return reshape_to(t[0], c.at("new_shape")); }}},
      {"flatten", {"shape", 1, [](In t, C) { return tg::flatten(t[0]); }}},

      {"linear", {"linear", 3, [](In t, C) { return tg::linear(t[0], t[1], t[2]); }}},
      {"linear_nobias", {"linear", 2, [](In t, C) { return tg::linear(t[0], t[1], tg::Tensor{}); }}},

      {"log_softmax", {"softmax", 1, [](In t, C) { return tg::log_softmax(t[0]); }}},
      {"softmax", {"softmax", 1, [](In t, C) { return tg::softmax(t[0]); }}},

      {"cross_entropy",
       {"cross_entropy", 1,
        [](In t, C c) { return tg::cross_entropy(t[0], c.at("labels").get<std::vector<int>>()); }}},
      {"mse_loss", {"mse_loss", 2, [](In t, C) { return tg::mse_loss(t[0], t[1]); }}},
  };
  return table;
}

// Runs one fixture case: forward, output check, backward of sum(out * grad_output), grad checks.
void run_case(const Json& c, const OpSpec& spec) {
  check_fixture_case(c, spec.n_inputs, [&](const std::vector<tg::Tensor>& in) { return spec.run(in, c); });
}

// Runs every case of one op family; returns how many ran. An op that throws fails its case only.
int run_family(const std::string& family) {
  const Json& cases = require_cases();
  int ran = 0;
  for (const Json& c : cases) {
    const auto it = op_table().find(c.value("op", std::string()));
    if (it == op_table().end() || it->second.family != family) continue;  // unknown ops: see below
    const std::string name = c.value("name", std::string("<unnamed>"));
    INFO("fixture case: ", name, " (op ", it->first, ")");
    try {
      run_case(c, it->second);
    } catch (const std::exception& e) {
      FAIL_CHECK("threw: ", std::string(e.what()));
    }
    ++ran;
  }
  return ran;
}

}  // namespace

TEST_CASE("PyTorch fixture file is present and every case names a known op") {
  const Json& cases = require_cases();
  std::set<std::string> names;
  std::set<std::string> families_seen;
  for (const Json& c : cases) {
    const std::string name = c.value("name", std::string());
    INFO("fixture case: ", name);
    CHECK(!name.empty());
    CHECK_MESSAGE(names.insert(name).second, "duplicate case name");
    const std::string op = c.value("op", std::string());
    const auto it = op_table().find(op);
    const bool known = it != op_table().end();
    CHECK_MESSAGE(known, "unknown op \"", op, "\": add it to op_table()");
    if (known) families_seen.insert(it->second.family);
  }
  // Every family has its own TEST_CASE below; each must have something to run.
  std::string missing;
  for (const auto& [op, spec] : op_table()) {
    if (!families_seen.count(spec.family)) missing += " " + op;
  }
  CHECK_MESSAGE(missing.empty(), "ops whose family has no fixture case:", missing);
}

TEST_CASE("binary ops with broadcasting match PyTorch") {
  const int ran = run_family("binary");
  CHECK(ran > 0);
}

TEST_CASE("ops with a float scalar on either side, and unary minus, match PyTorch") {
  const int ran = run_family("scalar");
  CHECK(ran > 0);
}

TEST_CASE("matmul matches PyTorch") {
  const int ran = run_family("matmul");
  CHECK(ran > 0);
}

TEST_CASE("relu, sigmoid, tanh, exp and log match PyTorch") {
  const int ran = run_family("unary");
  CHECK(ran > 0);
}

TEST_CASE("sum and mean to a 0-d scalar match PyTorch") {
  const int ran = run_family("reduction");
  CHECK(ran > 0);
}

TEST_CASE("reshape and flatten match PyTorch") {
  const int ran = run_family("shape");
  CHECK(ran > 0);
}

TEST_CASE("linear with and without bias matches PyTorch") {
  const int ran = run_family("linear");
  CHECK(ran > 0);
}

TEST_CASE("log_softmax and softmax along the last axis match PyTorch") {
  const int ran = run_family("softmax");
  CHECK(ran > 0);
}

TEST_CASE("cross_entropy matches PyTorch, including logits of +-1000") {
  const int ran = run_family("cross_entropy");
  CHECK(ran > 0);
}

TEST_CASE("mse_loss matches PyTorch, with gradients for both pred and target") {
  const int ran = run_family("mse_loss");
  CHECK(ran > 0);
}
