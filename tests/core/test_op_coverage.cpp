// Every op of core/ops/ is checked twice: against PyTorch on at least one fixture case, and by a
// finite-difference gradcheck. The ops are read from the headers at test time (`Tensor <name>(` declarations,
// the operators mapped to the names make_op records: add, add_scalar, rsub_scalar, neg...); the fixture cases
// from the JSON files; the checks from the registries that PYTORCH_TEST_CASE (fixture_runner.hpp) and
// GRADCHECK_TEST_CASE (test_util.hpp) fill at static initialization. So an op that loses its last fixture
// case, its PyTorch test or its gradcheck fails here, by name.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "fixture_runner.hpp"
#include "test_util.hpp"

using namespace test_util;

namespace {

namespace fs = std::filesystem;

// "const Tensor& a, float s" -> {"const Tensor& a", "float s"}
std::vector<std::string> split_params(const std::string& params) {
  std::vector<std::string> out;
  std::stringstream in(params);
  for (std::string p; std::getline(in, p, ',');) out.push_back(p);
  return out;
}

bool is_tensor_param(const std::string& p) { return p.find("Tensor") != std::string::npos; }

// The op name make_op records for an operator: + - * / of two tensors, with a float on one side, unary minus.
std::string operator_op_name(char symbol, const std::vector<std::string>& params) {
  static const std::map<char, std::string> binary = {{'+', "add"}, {'-', "sub"}, {'*', "mul"}, {'/', "div"}};
  if (params.size() == 1 && symbol == '-') return "neg";
  REQUIRE_MESSAGE(params.size() == 2, "unexpected operator", symbol, " with ", params.size(), " parameters");
  const std::string base = binary.at(symbol);
  if (is_tensor_param(params[0]) && is_tensor_param(params[1])) return base;
  const bool float_first = !is_tensor_param(params[0]);
  // float - x and float / x are their own ops; float + x and float * x are the commutative add/mul_scalar.
  if (float_first && (symbol == '-' || symbol == '/')) return "r" + base + "_scalar";
  return base + "_scalar";
}

// The differentiable ops declared in core/ops/*.hpp, by the names make_op records.
std::set<std::string> declared_ops() {
  const fs::path dir = fs::path(TAPEGRAD_SOURCE_DIR) / "core" / "ops";
  REQUIRE_MESSAGE(fs::is_directory(dir), dir.string(), " is not a directory");
  const std::regex named(R"(^\s*Tensor\s+([a-z_0-9]+)\s*\()");
  const std::regex op(R"(^\s*Tensor\s+operator\s*([-+*/])\s*\(([^)]*)\))");
  std::set<std::string> ops;
  for (const auto& entry : fs::directory_iterator(dir)) {
    // fused.hpp: inference passes, no backward (tests/core/test_conv2d_fused.cpp checks them)
    if (entry.path().extension() != ".hpp" || entry.path().filename() == "fused.hpp") continue;
    std::ifstream in(entry.path());
    for (std::string line; std::getline(in, line);) {
      std::smatch m;
      if (std::regex_search(line, m, op)) {
        ops.insert(operator_op_name(m[1].str()[0], split_params(m[2].str())));
      } else if (std::regex_search(line, m, named)) {
        ops.insert(m[1].str());
      }
    }
  }
  return ops;
}

// How many fixture cases each op has, over every op fixture file.
std::map<std::string, int> fixture_case_counts() {
  std::map<std::string, int> counts;
  for (const std::string& file : op_fixture_files()) {
    for (const Json& c : fixture_cases(file)) ++counts[c.value("op", std::string())];
  }
  return counts;
}

std::string join(const std::set<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += " " + n;
  return out;
}

}  // namespace

TEST_CASE("the op list read from core/ops/*.hpp has every family, operators mapped to make_op names") {
  const std::set<std::string> ops = declared_ops();
  INFO("declared ops:", join(ops));
  for (const char* expected :
       {"add",         "sub",           "mul",        "div",         "add_scalar", "sub_scalar",
        "rsub_scalar", "mul_scalar",    "div_scalar", "rdiv_scalar", "neg",        "relu",
        "leaky_relu",  "dropout",       "sum",        "flatten",     "matmul",     "linear",
        "softmax",     "cross_entropy", "conv2d",     "max_pool2d"}) {
    CHECK_MESSAGE(ops.count(expected) == 1, "op ", expected, " not found in core/ops/*.hpp");
  }
  CHECK(ops.count("conv2d_backward") == 0);  // returns gradients, not a Tensor: not an op of its own
}

TEST_CASE("every op of core/ops has at least one PyTorch fixture case") {
  const std::map<std::string, int> counts = fixture_case_counts();
  std::set<std::string> missing;
  for (const std::string& op : declared_ops()) {
    if (counts.count(op) == 0) missing.insert(op);
  }
  CHECK_MESSAGE(
      missing.empty(),
      "ops without a fixture case in tests/fixtures/{core_ops,conv_pool,extra_ops}.json:", join(missing));
}

TEST_CASE("every op of core/ops has a PyTorch fixture test (PYTORCH_TEST_CASE)") {
  std::set<std::string> missing;
  for (const std::string& op : declared_ops()) {
    if (pytorch_checked_ops().count(op) == 0) missing.insert(op);
  }
  CHECK_MESSAGE(missing.empty(), "ops without a PYTORCH_TEST_CASE:", join(missing));
}

TEST_CASE("every op of core/ops has a finite-difference gradcheck (GRADCHECK_TEST_CASE)") {
  std::set<std::string> missing;
  for (const std::string& op : declared_ops()) {
    if (gradchecked_ops().count(op) == 0) missing.insert(op);
  }
  CHECK_MESSAGE(missing.empty(), "ops without a GRADCHECK_TEST_CASE:", join(missing));
}

TEST_CASE("every fixture case names an op that a PyTorch fixture test runs") {
  std::set<std::string> unchecked;
  for (const auto& [op, count] : fixture_case_counts()) {
    if (pytorch_checked_ops().count(op) == 0) unchecked.insert(op.empty() ? "<no op>" : op);
  }
  CHECK_MESSAGE(unchecked.empty(), "fixture ops no PYTORCH_TEST_CASE runs:", join(unchecked));
}

TEST_CASE("every fixture case has a name, unique within its file, and an output and input gradients") {
  for (const std::string& file : op_fixture_files()) {
    std::set<std::string> names;
    for (const Json& c : fixture_cases(file)) {
      const std::string name = c.value("name", std::string());
      INFO(file, " case ", name);
      CHECK(!name.empty());
      CHECK_MESSAGE(names.insert(name).second, "duplicate case name");
      CHECK(c.contains("output"));
      CHECK(c.contains("grad_output"));
      CHECK(c.contains("inputs"));
      CHECK((c.contains("grads") && c.at("grads").size() == c.at("inputs").size()));
    }
  }
}
