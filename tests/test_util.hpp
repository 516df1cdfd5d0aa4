// What several test files share: temporary folders, running the apps, reading files, and comparing
// tapegrad arrays with PyTorch fixtures ({"shape": [...], "data": [...]} JSON objects).
#pragma once

#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tapegrad.hpp"

namespace test_util {

using Json = nlohmann::json;

// A fresh folder under the system temp dir, removed (with everything in it) at scope exit.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    static int counter = 0;
    path = std::filesystem::temp_directory_path() /
           ("tapegrad_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::permissions(path, std::filesystem::perms::owner_all, std::filesystem::perm_options::add, ec);
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path / name).string(); }
};

// A shell command's exit code and its stdout + stderr.
struct RunResult {
  int code;
  std::string output;
};
inline RunResult run(const std::string& command) {
  std::string output;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::array<char, 4096> buf{};
  while (std::fgets(buf.data(), static_cast<int>(buf.size()), pipe)) output += buf.data();
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_bytes(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// ---- gradcheck ----

// A leaf tensor of uniform values in [lo, hi), requiring grad, from its own seed.
inline tg::Tensor param(const tg::Shape& shape, std::uint64_t seed, float lo = -1.f, float hi = 1.f) {
  tg::Generator gen(seed);
  return tg::Tensor(tg::rand_uniform(shape, lo, hi, gen), true);
}

// gradcheck passes, and the gradient it checked is not all zeros (so the check could have failed).
inline void check_gradients(const std::function<tg::Tensor(const std::vector<tg::Tensor>&)>& f,
                            const std::vector<tg::Tensor>& inputs) {
  const tg::GradcheckResult r = tg::gradcheck(f, inputs);
  INFO(r.report);
  CHECK(r.ok);
  CHECK(r.nonzero);
}

// ---- PyTorch fixtures ----

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

inline std::vector<std::size_t> shape_of(const Json& t) { return t.at("shape").get<std::vector<std::size_t>>(); }

// A {"shape": [...], "data": [...flat row-major...]} object as a tg::Array (0-d when shape is []).
inline tg::Array array_of(const Json& t) {
  const std::vector<float> data = t.at("data").get<std::vector<float>>();
  tg::Array a = tg::Array::from_shape(shape_of(t));
  REQUIRE_MESSAGE(a.size() == data.size(), "fixture tensor has ", data.size(), " values for its shape");
  std::copy(data.begin(), data.end(), a.begin());
  return a;
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
inline void check_close(const tg::Array& got, const Json& expected, const std::string& what, Tolerance tol = {}) {
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
      FAIL_CHECK(what, " element ", i, " (flat, row-major): tapegrad ", have[i], ", PyTorch ", want[i], ", |diff| ",
                 std::fabs(have[i] - want[i]), " > tol ", tol.abs + tol.rel * std::fabs(want[i]));
    }
    ++mismatches;
  }
  INFO(what, ": ", mismatches, " of ", want.size(), " elements differ");
  CHECK(mismatches == 0);
}

// One PyTorch fixture case ({"inputs", "output", "grad_output", "grads"}): rebuilds the inputs as leaves that
// require grad, runs `op`, compares the output, backpropagates sum(out * grad_output) and compares every
// input's gradient. `input_names` (optional) label the inputs in messages.
inline void check_fixture_case(const Json& c, std::size_t n_inputs,
                               const std::function<tg::Tensor(const std::vector<tg::Tensor>&)>& op,
                               const std::vector<std::string>& input_names = {}) {
  const Json& inputs_json = c.at("inputs");
  REQUIRE_MESSAGE(inputs_json.size() == n_inputs, "fixture case has ", inputs_json.size(), " inputs, op takes ",
                  n_inputs);
  REQUIRE(c.at("grads").size() == n_inputs);
  std::vector<tg::Tensor> inputs;
  for (const Json& in : inputs_json) inputs.emplace_back(array_of(in), /*requires_grad=*/true);
  const tg::Tensor out = op(inputs);
  check_close(out.value(), c.at("output"), "output");
  const tg::Tensor grad_output(array_of(c.at("grad_output")), /*requires_grad=*/false);
  tg::sum(out * grad_output).backward();
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const std::string label = i < input_names.size() ? " (" + input_names[i] + ")" : "";
    check_close(inputs[i].grad(), c.at("grads")[i], "grad of input " + std::to_string(i) + label);
  }
}

}  // namespace test_util
