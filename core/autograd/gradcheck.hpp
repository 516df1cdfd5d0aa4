// Finite-difference check of analytic gradients, for any function of tensors.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/autograd/tensor.hpp"

namespace tg {

struct GradcheckOptions {
  float eps = 5e-3f;   // central-difference step
  float atol = 5e-3f;  // an element passes when |analytic - numeric| <= atol + rtol * |numeric|
  float rtol = 1e-2f;
};

struct GradcheckResult {
  bool ok = false;            // every element of every input within tolerance
  float max_abs_error = 0.f;  // largest |analytic - numeric| over all inputs
  bool nonzero = false;       // some analytic gradient element is non-zero (a check that can fail)
  std::string report;         // one line per input: shape, max error, worst element
};

// Compares the tape's gradients of f(inputs) with central differences, in float32. f may return any shape;
// a non-scalar output is reduced as sum(out * w) with fixed pseudo-random weights w. Every input must
// require grad. The inputs' values and grads are restored afterwards.
GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& options = {});

}  // namespace tg
