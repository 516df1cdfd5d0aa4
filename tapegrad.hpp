// tapegrad: the umbrella header. Everything in ../shared/API.md is reachable from here.
#pragma once

#include "core/error.hpp"
#include "core/gradcheck.hpp"
#include "core/ops.hpp"
#include "core/random.hpp"
#include "core/tape.hpp"
#include "core/tensor.hpp"
#include "core/threads.hpp"
#include "core/xt.hpp"
#include "data/dataloader.hpp"
#include "data/idx.hpp"
#include "data/mnist.hpp"

namespace tg {
using Array = tg::Array;
}  // namespace tg
