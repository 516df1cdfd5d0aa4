// The one runner for PyTorch fixture cases, used by every unit file for its op's cases.
//
// A fixture file (tests/fixtures/core_ops.json from gen_fixtures.py, conv_pool.json from
// gen_fixtures_conv.py, extra_ops.json from gen_fixtures_extra.py; regenerate with /usr/bin/python3) holds
// {"cases": [...]}; a case is {"name", "op", "inputs": [tensors], "output", "grad_output", "grads": [one per
// input]} plus what the op needs ("scalar", "options", "labels", "new_shape", "slope", "p"). A tensor is
// {"shape": [...], "data":
// [...flat row-major float32...]}. The tests only read the JSON and never need torch.
//
//   PYTORCH_TEST_CASE("relu", "on values of both signs") {
//     check_pytorch_cases(kCoreOps, op, [](const Inputs& t, const Json&) { return tg::relu(t[0]); });
//   }
//
// declares TEST_CASE "relu matches PyTorch: on values of both signs" and registers "relu" for
// tests/core/test_op_coverage.cpp; `op` inside the body is the macro's first argument. check_pytorch_cases
// runs every case of that op in the file (that `where` selects): it rebuilds the inputs as leaves requiring
// grad, runs the op, compares the output, backpropagates sum(out * grad_output) and compares every input's
// gradient. It fails when the file is missing or has no such case, so an op cannot lose its cases silently.
#pragma once

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
#include <string>
#include <vector>

#include "tapegrad.hpp"
#include "test_util.hpp"

namespace test_util {

using Json = nlohmann::json;

// Fixture files, by name under tests/fixtures/.
inline constexpr const char* kCoreOps = "core_ops.json";          // tests/gen_fixtures.py
inline constexpr const char* kConvPool = "conv_pool.json";        // tests/gen_fixtures_conv.py
inline constexpr const char* kExtraOps = "extra_ops.json";        // tests/gen_fixtures_extra.py
inline constexpr const char* kBatchNorm = "batch_norm.json";      // tests/gen_fixtures_bn.py
inline constexpr const char* kAvgPool = "avg_pool.json";          // tests/gen_fixtures_pool.py
inline constexpr const char* kGroupedConv = "grouped_conv.json";  // tests/gen_fixtures_grouped.py
inline const std::vector<std::string>& op_fixture_files() {
  static const std::vector<std::string> files = {kCoreOps,   kConvPool, kExtraOps,
                                                 kBatchNorm, kAvgPool,  kGroupedConv};
  return files;
}
inline std::string fixture_path(const std::string& file) { return std::string(TG_FIXTURE_DIR) + "/" + file; }

// The parsed JSON file, or a null value when it is missing or unreadable (the tests then fail).
inline Json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Json();
  try {
    return Json::parse(in);
  } catch (const std::exception&) {
    return Json();
  }
}

// The parsed fixture file under tests/fixtures/, read once per process.
inline const Json& fixture(const std::string& file) {
  static std::map<std::string, Json> cache;
  auto it = cache.find(file);
  if (it == cache.end()) it = cache.emplace(file, read_json(fixture_path(file))).first;
  return it->second;
}

// The "cases" of an op fixture file; fails the current test (and stops it) unless there is a non-empty list.
inline const Json& fixture_cases(const std::string& file) {
  const Json& doc = fixture(file);
  INFO("fixture file: ", fixture_path(file), " (regenerate with /usr/bin/python3 tests/gen_fixtures*.py)");
  REQUIRE_MESSAGE(doc.is_object(), "fixture file is missing or is not valid JSON");
  REQUIRE_MESSAGE(doc.contains("cases"), "fixture file has no \"cases\"");
  REQUIRE(doc.at("cases").is_array());
  REQUIRE(!doc.at("cases").empty());
  return doc.at("cases");
}

inline std::vector<std::size_t> shape_of(const Json& t) {
  return t.at("shape").get<std::vector<std::size_t>>();
}

// A {"shape": [...], "data": [...flat row-major...]} object as a tg::Array (0-d when shape is []).
inline tg::Array array_of(const Json& t) {
  const std::vector<float> data = t.at("data").get<std::vector<float>>();
  tg::Array a = tg::Array::from_shape(shape_of(t));
  REQUIRE_MESSAGE(a.size() == data.size(), "fixture tensor has ", data.size(), " values for its shape");
  std::copy(data.begin(), data.end(), a.begin());
  return a;
}

// Option `key` of a fixture case, a pair such as "stride": [sh, sw].
inline std::array<int, 2> pair_of(const Json& options, const char* key) {
  const std::vector<int> v = options.at(key).get<std::vector<int>>();
  REQUIRE_MESSAGE(v.size() == 2, "option \"", std::string(key), "\" must have 2 values");
  return {v[0], v[1]};
}

// Conv options {"stride", "padding", "dilation"} as pairs, and "groups" when present (else 1).
inline tg::Conv2dOptions conv2d_options(const Json& o) {
  const auto [sh, sw] = pair_of(o, "stride");
  const auto [ph, pw] = pair_of(o, "padding");
  const auto [dh, dw] = pair_of(o, "dilation");
  return {.stride = {sh, sw}, .padding = {ph, pw}, .dilation = {dh, dw}, .groups = o.value("groups", 1)};
}

struct Tolerance {
  float abs = 1e-5f;
  float rel = 1e-4f;
};

inline bool close(float got, float want, Tolerance tol = {}) {
  return std::fabs(got - want) <= tol.abs + tol.rel * std::fabs(want);  // NaN never passes
}

// Checks `got` against the fixture tensor `expected`: the shape exactly, then every element with
// |got - want| <= abs + rel * |want|; reports the first few mismatches by flat index.
inline void check_close(const tg::Array& got, const Json& expected, const std::string& what,
                        Tolerance tol = {}) {
  INFO("comparing ", what);
  const std::string got_shape = tg::shape_str(got.shape()), want_shape = tg::shape_str(shape_of(expected));
  CHECK(got_shape == want_shape);
  if (got_shape != want_shape) return;
  const std::vector<float> want = expected.at("data").get<std::vector<float>>();
  const std::vector<float> have(got.begin(), got.end());  // row-major traversal
  REQUIRE(have.size() == want.size());
  int mismatches = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (close(have[i], want[i], tol)) continue;
    if (mismatches < 5) {  // per tensor, so a broken op does not flood the log
      FAIL_CHECK(what, " element ", i, " (flat, row-major): tapegrad ", have[i], ", PyTorch ", want[i],
                 ", |diff| ", std::fabs(have[i] - want[i]), " > tol ",
                 tol.abs + tol.rel * std::fabs(want[i]));
    }
    ++mismatches;
  }
  INFO(what, ": ", mismatches, " of ", want.size(), " elements differ");
  CHECK(mismatches == 0);
}

// Runs an op on a case's tensor inputs; the case itself gives the rest ("scalar", "options", "labels"...).
using FixtureOp = std::function<tg::Tensor(const Inputs& inputs, const Json& fixture_case)>;
// Selects some cases of an op (conv2d with padding "same", say); an empty filter takes them all.
using CaseFilter = std::function<bool(const Json& fixture_case)>;

// One case: rebuilds the inputs as leaves that require grad, runs `op`, compares the output, backpropagates
// sum(out * grad_output) and compares every input's gradient. `input_names` (optional) label the inputs.
inline void check_pytorch_case(const Json& c, const FixtureOp& op,
                               const std::vector<std::string>& input_names = {}) {
  const Json& inputs_json = c.at("inputs");
  REQUIRE(c.at("grads").size() == inputs_json.size());
  std::vector<tg::Tensor> inputs;
  for (const Json& in : inputs_json) inputs.emplace_back(array_of(in), /*requires_grad=*/true);
  const tg::Tensor out = op(inputs, c);
  check_close(out.value(), c.at("output"), "output");
  const tg::Tensor grad_output(array_of(c.at("grad_output")), /*requires_grad=*/false);
  tg::sum(out * grad_output).backward();
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const std::string label = i < input_names.size() ? " (" + input_names[i] + ")" : "";
    check_close(inputs[i].grad(), c.at("grads")[i], "grad of input " + std::to_string(i) + label);
  }
}

// Every case of `op` in fixture `file` that `where` selects, each checked by check_pytorch_case; a case that
// throws fails on its own. Returns how many ran, and fails when none did.
inline int check_pytorch_cases(const std::string& file, const std::string& op, const FixtureOp& run,
                               const CaseFilter& where = {},
                               const std::vector<std::string>& input_names = {}) {
  const Json& cases = fixture_cases(file);
  int ran = 0;
  for (const Json& c : cases) {
    if (c.value("op", std::string()) != op || (where && !where(c))) continue;
    INFO("fixture case: ", c.value("name", std::string("<unnamed>")), " of ", file, " (op ", op,
         c.contains("options") ? ", options " + c.at("options").dump() : std::string(), ")");
    try {
      ClearTapeOnExit clear_tape;
      check_pytorch_case(c, run, input_names);
    } catch (const std::exception& e) {
      FAIL_CHECK("threw: ", std::string(e.what()));
    }
    ++ran;
  }
  CHECK_MESSAGE(ran > 0, "no fixture case of op \"", op, "\" in ", file, " (regenerate the fixtures?)");
  return ran;
}

}  // namespace test_util

// A TEST_CASE named "OP matches PyTorch: DESC" that registers OP as checked against PyTorch; the body sees
// `op` (= OP) to pass to check_pytorch_cases.
#define PYTORCH_TEST_CASE(OP, DESC) TG_PYTORCH_TEST_CASE_IMPL(OP, DESC, __COUNTER__)
#define TG_PYTORCH_TEST_CASE_IMPL(OP, DESC, ID)                                         \
  static void TG_TEST_CONCAT(tg_pytorch_body_, ID)(const std::string& op);              \
  [[maybe_unused]] static const bool TG_TEST_CONCAT(tg_pytorch_registered_, ID) =       \
      ::test_util::register_op(::test_util::pytorch_checked_ops(), OP);                 \
  TEST_CASE(OP " matches PyTorch: " DESC) { TG_TEST_CONCAT(tg_pytorch_body_, ID)(OP); } \
  static void TG_TEST_CONCAT(tg_pytorch_body_, ID)(const std::string& op)
