// A tensor against a PyTorch fixture's record of it, for the built-in models' training runs in miniature
// (tests/gen_fixtures_models.py's cifarnet run, tests/gen_fixtures_residual.py's resnet20 and mobilenetv2
// runs): every value of a small tensor, or a few samples (every stride-th value) plus the sum and the sum of
// absolute values, which the test recomputes so that every element counts.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tapegrad.hpp"

namespace test_util {

// {"shape", "data"} or {"shape", "stride", "samples", "sum", "abs_sum"}. Tolerances relative to the tensor's
// scale (its mean absolute value); atol: an absolute allowance, for gradients that are 0 up to rounding.
inline void check_against(const std::string& what, const tg::Array& a, const nlohmann::json& ref, double rtol,
                          double atol = 0) {
  INFO(what);
  std::vector<std::size_t> ref_shape = ref.at("shape").get<std::vector<std::size_t>>();
  REQUIRE(tg::Shape(a.shape().begin(), a.shape().end()) == tg::Shape(ref_shape.begin(), ref_shape.end()));
  double abs_sum = 0, sum = 0;
  for (std::size_t i = 0; i < a.size(); ++i) abs_sum += std::fabs(a.data()[i]), sum += a.data()[i];
  const double scale = std::max(abs_sum / static_cast<double>(a.size()), 1e-6);
  const double tol = rtol * scale + atol;
  if (ref.contains("data")) {
    const auto data = ref.at("data").get<std::vector<float>>();
    REQUIRE(data.size() == a.size());
    for (std::size_t i = 0; i < data.size(); ++i) CHECK(std::fabs(a.data()[i] - data[i]) <= tol);
    return;
  }
  const auto stride = ref.at("stride").get<std::size_t>();
  const auto samples = ref.at("samples").get<std::vector<float>>();
  REQUIRE((samples.size() - 1) * stride < a.size());
  for (std::size_t k = 0; k < samples.size(); ++k) CHECK(std::fabs(a.data()[k * stride] - samples[k]) <= tol);
  CHECK(std::fabs(sum - ref.at("sum").get<double>()) <=
        rtol * abs_sum + atol * static_cast<double>(a.size()) + 1e-5);
  CHECK(std::fabs(abs_sum - ref.at("abs_sum").get<double>()) <=
        rtol * abs_sum + atol * static_cast<double>(a.size()) + 1e-5);
}

}  // namespace test_util
