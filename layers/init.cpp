#include "layers/init.hpp"

#include <cmath>

#include "core/runtime/random.hpp"

namespace tg {

// gain = sqrt(2 / (1 + a^2)) = sqrt(1/3) for a = sqrt(5); bound = sqrt(3) * gain / sqrt(fan_in) = 1 /
// sqrt(fan_in)
Array kaiming_uniform_default(const Shape& shape, std::size_t fan_in) {
  const float bound = 1.f / std::sqrt(static_cast<float>(fan_in));
  return rand_uniform(shape, -bound, bound);
}

Array bias_uniform_default(const Shape& shape, std::size_t fan_in) {
  const float bound = fan_in > 0 ? 1.f / std::sqrt(static_cast<float>(fan_in)) : 0.f;
  return rand_uniform(shape, -bound, bound);
}

}  // namespace tg
