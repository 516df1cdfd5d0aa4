#include "core/runtime/random.hpp"

#include <cmath>
#include <numbers>
#include <sstream>

#include "core/base/error.hpp"

namespace tg {

float Generator::uniform() { return static_cast<float>(engine_() >> 40) * 0x1.0p-24f; }

float Generator::uniform(float lo, float hi) { return lo + (hi - lo) * uniform(); }

float Generator::normal() {
  // Box-Muller; u1 in (0, 1] so the log is finite
  const double u1 = (static_cast<double>(engine_() >> 11) + 1.0) * 0x1.0p-53;
  const double u2 = static_cast<double>(engine_() >> 11) * 0x1.0p-53;
  return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2));
}

std::uint64_t Generator::below(std::uint64_t n) {
  if (n == 0) return 0;
  const std::uint64_t limit = UINT64_MAX - UINT64_MAX % n;  // reject the biased tail
  std::uint64_t r = engine_();
  while (r >= limit) r = engine_();
  return r % n;
}

std::string Generator::state() const {
  std::ostringstream out;
  out << engine_;
  return out.str();
}

void Generator::set_state(const std::string& state) {
  std::istringstream in(state);
  std::mt19937_64 engine;
  in >> engine;
  if (in.fail()) fail("Generator::set_state: not a saved generator state (", state.size(), " characters)");
  engine_ = engine;
}

Generator& default_generator() {
  static Generator gen;
  return gen;
}

void manual_seed(std::uint64_t seed) { default_generator().seed(seed); }

Array rand_uniform(const Shape& shape, float lo, float hi, Generator& gen) {
  Array out = Array::from_shape(shape);
  for (float& v : out) v = gen.uniform(lo, hi);
  return out;
}

Array randn(const Shape& shape, Generator& gen) {
  Array out = Array::from_shape(shape);
  for (float& v : out) v = gen.normal();
  return out;
}

}  // namespace tg
