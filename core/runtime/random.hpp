// One seedable random source for the whole framework: same seed, same numbers, on every platform.
#pragma once

#include <cstdint>
#include <random>
#include <string>

#include "core/xt.hpp"

namespace tg {

// mt19937_64 (its output is fixed by the C++ standard) with our own float conversions, because the
// standard distributions differ between library implementations.
class Generator {
 public:
  explicit Generator(std::uint64_t seed = kDefaultSeed) : engine_(seed) {}
  void seed(std::uint64_t seed) { engine_.seed(seed); }
  std::uint64_t next_u64() { return engine_(); }
  float uniform();                       // [0, 1), 24 random bits
  float uniform(float lo, float hi);     // [lo, hi)
  float normal();                        // standard normal (Box-Muller)
  std::uint64_t below(std::uint64_t n);  // uniform integer in [0, n), unbiased
  // The engine's whole state as text (the standard's mt19937_64 stream format), to save in a checkpoint;
  // set_state(state()) continues the same sequence. set_state throws tg::Error for text that is not one.
  std::string state() const;
  void set_state(const std::string& state);

  static constexpr std::uint64_t kDefaultSeed = 5489u;

 private:
  std::mt19937_64 engine_;
};

// The framework's generator (initializers, Dropout, shuffling unless given their own seed).
Generator& default_generator();
// Seeds every random source of the framework.
void manual_seed(std::uint64_t seed);

Array rand_uniform(const Shape& shape, float lo, float hi, Generator& gen = default_generator());
Array randn(const Shape& shape, Generator& gen = default_generator());

}  // namespace tg
