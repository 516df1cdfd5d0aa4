// What several test files share: temporary folders, running the apps, reading files, gradchecks that register
// the op they cover (tests/core/test_op_coverage.cpp reads the registry), and RAII guards for process-wide
// settings. Comparing with PyTorch fixtures: tests/fixture_runner.hpp.
#pragma once

#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "tapegrad.hpp"

namespace test_util {

// The tensor inputs of an op under test (gradcheck, fixture cases).
using Inputs = std::vector<tg::Tensor>;

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
    std::filesystem::permissions(path, std::filesystem::perms::owner_all, std::filesystem::perm_options::add,
                                 ec);
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path / name).string(); }
};

// The 600 + 100 image MNIST subset committed for the tests (tests/fixtures/mnist_small).
inline const std::string kSmallMnist = TG_FIXTURE_DIR "/mnist_small";

// The names of a named_parameters/named_buffers/named_state list, in order.
inline std::vector<std::string> names_of(const std::vector<std::pair<std::string, tg::Tensor>>& named) {
  std::vector<std::string> names;
  for (const auto& [name, t] : named) names.push_back(name);
  return names;
}

// A quiet NaN (inputs that must be caught, outputs that must be overwritten).
inline constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// An array's values, in order.
inline std::vector<float> values_of(const tg::Array& a) { return {a.begin(), a.end()}; }

// A zero-filled leaf that requires its gradient (shape errors of the ops).
inline tg::Tensor zeros_leaf(const tg::Shape& shape) { return tg::Tensor(xt::zeros<float>(shape), true); }

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

// What `tapegrad predict` prints after an image's path when `model` gives x (one image, normalized as the
// checkpoint does) its top class: ": cat  (cat 97.31%".
inline std::string predicted_text(tg::Sequential& model, const tg::Array& x,
                                  const std::vector<std::string>& names) {
  tg::NoGradGuard no_grad;
  const tg::Array probs = tg::softmax(model(tg::Tensor(x))).value();
  const auto best = static_cast<std::size_t>(std::max_element(probs.begin(), probs.end()) - probs.begin());
  char text[512];
  std::snprintf(text, sizeof text, ": %s  (%s %.2f%%", names.at(best).c_str(), names.at(best).c_str(),
                100.0 * probs.data()[best]);
  return text;
}
// The same for example i of `data`.
inline std::string predicted_text(tg::Sequential& model, const tg::ImageDataset& data, std::size_t i,
                                  const std::vector<std::string>& names) {
  tg::Array x = tg::Array::from_shape({1, data.channels(), data.rows(), data.cols()});
  data.normalized(i, x.data());
  return predicted_text(model, x, names);
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_bytes(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// ---- gradcheck ----

// A leaf tensor of uniform values in [lo, hi), requiring grad, from its own seed.
inline tg::Tensor param(const tg::Shape& shape, std::uint64_t seed, float lo = -1.f, float hi = 1.f) {
  tg::Generator gen(seed);
  return tg::Tensor(tg::rand_uniform(shape, lo, hi, gen), true);
}

// A leaf tensor of values with 0.3 <= |v| < 1.5 and random signs: away from relu's kink and from zero
// denominators.
inline tg::Tensor param_away_from_zero(const tg::Shape& shape, std::uint64_t seed) {
  tg::Generator gen(seed);
  tg::Array v = tg::rand_uniform(shape, 0.3f, 1.5f, gen);
  for (float& x : v) x = gen.uniform() < 0.5f ? -x : x;
  return tg::Tensor(std::move(v), true);
}

// gradcheck passes, and the gradient it checked is not all zeros (so the check could have failed).
inline void check_gradients(const std::function<tg::Tensor(const std::vector<tg::Tensor>&)>& f,
                            const std::vector<tg::Tensor>& inputs) {
  const tg::GradcheckResult r = tg::gradcheck(f, inputs);
  INFO(r.report);
  CHECK(r.ok);
  CHECK(r.nonzero);
}

// ---- what the op-coverage test reads ----

// Names registered at static initialization, so every test process sees all of them whichever test it runs.
inline std::set<std::string>& gradchecked_ops() {
  static std::set<std::string> ops;
  return ops;
}
inline std::set<std::string>& pytorch_checked_ops() {
  static std::set<std::string> ops;
  return ops;
}
inline bool register_op(std::set<std::string>& registry, const char* op) {
  return registry.insert(op).second;
}

#define TG_TEST_CONCAT_IMPL(a, b) a##b
#define TG_TEST_CONCAT(a, b) TG_TEST_CONCAT_IMPL(a, b)

// A TEST_CASE that gradchecks op `OP` (an op name as make_op records it: "relu", "add_scalar", "neg"), named
// "OP: gradcheck DESC". Registers OP, so test_op_coverage.cpp fails when an op of core/ops/ loses its last
// one.
//   GRADCHECK_TEST_CASE("relu", "on values away from the kink at 0") { check_gradients(...); }
// (__COUNTER__, not __LINE__: the test files of a unity build share one translation unit.)
#define GRADCHECK_TEST_CASE(OP, DESC) TG_GRADCHECK_TEST_CASE_IMPL(OP, DESC, __COUNTER__)
#define TG_GRADCHECK_TEST_CASE_IMPL(OP, DESC, ID)                                   \
  [[maybe_unused]] static const bool TG_TEST_CONCAT(tg_gradcheck_registered_, ID) = \
      ::test_util::register_op(::test_util::gradchecked_ops(), OP);                 \
  TEST_CASE(OP ": gradcheck " DESC)

// ---- process-wide settings ----

// Sets a process-wide setting for one scope and restores the previous value at scope exit, also when a
// REQUIRE throws out of the test, so no setting leaks into the tests that run after it in the same process.
template <class T>
class ScopedSetting {
 public:
  ScopedSetting(std::function<T()> get, std::function<void(T)> set, T value)
      : set_(std::move(set)), previous_(get()) {
    set_(value);
  }
  ~ScopedSetting() { set_(previous_); }
  ScopedSetting(const ScopedSetting&) = delete;
  ScopedSetting& operator=(const ScopedSetting&) = delete;

 private:
  std::function<void(T)> set_;
  T previous_;
};

struct ScopedConvAlgorithm : ScopedSetting<tg::ConvAlgorithm> {
  explicit ScopedConvAlgorithm(tg::ConvAlgorithm a)
      : ScopedSetting(tg::conv_algorithm, tg::set_conv_algorithm, a) {}
};
struct ScopedNumThreads : ScopedSetting<int> {
  explicit ScopedNumThreads(int n) : ScopedSetting(tg::num_threads, tg::set_num_threads, n) {}
};
// tg::set_own_gemm(false): products in OpenBLAS even where the build has tapegrad's AVX-512 kernel.
struct ScopedOwnGemm : ScopedSetting<bool> {
  explicit ScopedOwnGemm(bool on) : ScopedSetting(tg::own_gemm, tg::set_own_gemm, on) {}
};
struct ScopedDetectAnomaly : ScopedSetting<bool> {
  explicit ScopedDetectAnomaly(bool on) : ScopedSetting(tg::detect_anomaly, tg::set_detect_anomaly, on) {}
};
struct ScopedProfiling : ScopedSetting<bool> {
  explicit ScopedProfiling(bool on) : ScopedSetting(tg::profiling, tg::set_profiling, on) {}
};
struct ScopedMemoryReuse : ScopedSetting<bool> {
  explicit ScopedMemoryReuse(bool on) : ScopedSetting(tg::memory_reuse, tg::set_memory_reuse, on) {}
};
struct ScopedGradMode : ScopedSetting<bool> {
  explicit ScopedGradMode(bool on) : ScopedSetting(tg::grad_enabled, tg::set_grad_enabled, on) {}
};

// tg::manual_seed(seed) for one scope; the framework's generator gets its previous state back at scope exit.
class ScopedSeed {
 public:
  explicit ScopedSeed(std::uint64_t seed) : previous_(tg::default_generator()) { tg::manual_seed(seed); }
  ~ScopedSeed() { tg::default_generator() = previous_; }
  ScopedSeed(const ScopedSeed&) = delete;
  ScopedSeed& operator=(const ScopedSeed&) = delete;

 private:
  tg::Generator previous_;
};

// Clears this thread's tape at scope exit, so entries a failed test left behind do not reach the next test.
struct ClearTapeOnExit {
  ClearTapeOnExit() = default;
  ~ClearTapeOnExit() { tg::clear_tape(); }
  ClearTapeOnExit(const ClearTapeOnExit&) = delete;
  ClearTapeOnExit& operator=(const ClearTapeOnExit&) = delete;
};

// The tensors of two checkpoints (weights, buffers, optimizer state), bit for bit; their metadata holds
// timings (seconds per epoch), which differ run to run.
inline bool same_tensors(const std::string& a, const std::string& b) {
  const tg::SafetensorsFile fa = tg::read_safetensors(a), fb = tg::read_safetensors(b);
  if (fa.tensors.size() != fb.tensors.size() || fa.tensors.empty()) return false;
  for (std::size_t i = 0; i < fa.tensors.size(); ++i) {
    const auto& [name_a, x] = fa.tensors[i];
    const auto& [name_b, y] = fb.tensors[i];
    if (name_a != name_b || x.shape() != y.shape() ||
        std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) != 0)
      return false;
  }
  return true;
}

// The two MNIST models of docs/benchmarks.md written in C++, to compare with what the model files
// apps/models/lenet.tg and convnet.tg build (61,706 and 1,199,882 parameters).
inline tg::Sequential cpp_model(const std::string& name) {
  if (name == "lenet") {
    return tg::Sequential(tg::Conv2D(1, 6, 5, {.padding = {2, 2}}), tg::ReLU(), tg::MaxPool2D(2),
                          tg::Conv2D(6, 16, 5), tg::ReLU(), tg::MaxPool2D(2), tg::Flatten(),
                          tg::Linear(400, 120), tg::ReLU(), tg::Linear(120, 84), tg::ReLU(),
                          tg::Linear(84, 10));
  }
  REQUIRE(name == "convnet");
  return tg::Sequential(tg::Conv2D(1, 32, 3), tg::ReLU(), tg::Conv2D(32, 64, 3), tg::ReLU(), tg::MaxPool2D(2),
                        tg::Flatten(), tg::Linear(9216, 128), tg::ReLU(), tg::Linear(128, 10));
}

// The message of the tg::Error that building the model file `text` ("net.tg") throws; "" if it builds.
inline std::string model_error_of(const std::string& text, const tg::Shape& input = {1, 28, 28},
                                  int classes = 10) {
  try {
    tg::model_from_text(text, input, classes, "net.tg");
  } catch (const tg::Error& e) {
    return e.what();
  }
  return "";
}

// A module's state (parameters and buffers) as (key, shape), in state_dict order.
inline std::vector<std::pair<std::string, tg::Shape>> state_shapes(const tg::Module& m) {
  std::vector<std::pair<std::string, tg::Shape>> out;
  for (const auto& [name, t] : m.named_state()) out.emplace_back(name, t.shape());
  return out;
}

}  // namespace test_util
