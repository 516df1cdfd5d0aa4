// PyTorch's default initialization, drawn from tg::default_generator() (seeded by tg::manual_seed).
#pragma once

#include <cstddef>

#include "core/xt.hpp"

namespace tg {

// kaiming_uniform_(a = sqrt(5)) as nn.Linear and nn.Conv2d use it: U(-b, b) with b = 1 / sqrt(fan_in).
Array kaiming_uniform_default(const Shape& shape, std::size_t fan_in);
// The default bias: also U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
Array bias_uniform_default(const Shape& shape, std::size_t fan_in);

}  // namespace tg
