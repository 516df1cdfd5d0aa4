// What the MPI tests (mpi_equivalence.cpp, mpi_residual.cpp) compare across ranks: arrays within float
// tolerance, and one rank's arrays fetched on every rank.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "tapegrad.hpp"

namespace mpi_test {

// Largest |a - b| / (1e-4 + 1e-3 |b|) over all arrays: 0 is equal, <= 1 within float tolerance.
inline double worst_ratio(const std::vector<tg::Array>& a, const std::vector<tg::Array>& b) {
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    for (std::size_t k = 0; k < a[i].size(); ++k) {
      const double d = std::fabs(a[i].data()[k] - b[i].data()[k]) / (1e-4 + 1e-3 * std::fabs(b[i].data()[k]));
      worst = std::isnan(d) ? INFINITY : std::max(worst, d);
    }
  }
  return worst;
}

// Rank root's arrays on every rank (`mine` gives the shapes).
inline std::vector<tg::Array> from_rank(const std::vector<tg::Array>& mine, int root) {
  std::vector<tg::Tensor> carriers;
  for (const tg::Array& a : mine) carriers.emplace_back(a);
  tg::distributed::broadcast_parameters(carriers, root);
  std::vector<tg::Array> out;
  for (const tg::Tensor& t : carriers) out.push_back(t.value());
  return out;
}

}  // namespace mpi_test
