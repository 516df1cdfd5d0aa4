// The one place tapegrad talks to BLAS. Row-major SGEMM: C[m,n] = alpha op(A) op(B) + beta C.
#pragma once

#include <cstddef>

namespace tg {

// op(A) is [m, k] (A stored [k, m] when trans_a), op(B) is [k, n] (B stored [n, k] when trans_b); all
// row-major and contiguous. beta = 0 overwrites C, beta = 1 accumulates into it.
void sgemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha, const float* a,
           const float* b, float beta, float* c);

// Sets OpenBLAS's thread count (used by tg::set_num_threads).
void blas_set_num_threads(int n);

}  // namespace tg
