// Writes arrays as numpy .npy files, for inspection: np.load(path).
#pragma once

#include <string>

#include "core/xt.hpp"

namespace tg {

// One float32 array in C order; atomic (temp file + rename). From a debugger too:
// `call tg::dump_npy(x, "/tmp/x.npy")` (the Tensor overload is in layers/checkpoint.hpp).
void dump_npy(const Array& value, const std::string& path);

}  // namespace tg
