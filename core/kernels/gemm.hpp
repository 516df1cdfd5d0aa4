// tapegrad's own SGEMM for CPUs with AVX-512: C[m, n] = alpha op(A) op(B) + beta C, row-major, with leading
// dimensions. OpenBLAS is pinned to its AVX2 (Haswell) kernels in some environments (OPENBLAS_CORETYPE),
// where the linear layers ran at 40% of the FMA peak; this one keeps its zmm registers whatever the
// environment. BLIS's loop order: blocks of kNC columns of C, kKC of the inner dimension and kMC rows;
// op(B)'s block packed into panels of kNR columns, op(A)'s (times alpha) into panels of kMR rows; an 8 x 32
// register tile (gemm_tile) does the products. tg::sgemm (blas.hpp) calls it; OpenBLAS's sgemm is the
// reference it is tested against (tests/core/test_blas_kernel.cpp), and the kernel without AVX-512.
#pragma once

#include <cstddef>

namespace tg {

// C[m, n] (row stride ldc) = beta C; beta = 0 writes zeros without reading C (a fresh buffer's garbage may be
// NaN). What a product with an empty inner dimension leaves, and SGEMV's start when beta = 0.
inline void scale_matrix(std::size_t m, std::size_t n, float beta, float* c, std::size_t ldc) {
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.f ? 0.f : beta * c[i * ldc + j];
}

// Whether gemm_avx512 was compiled in (an AVX-512 target, i.e. -march=native on such a CPU).
bool gemm_avx512_available();

// op(A) is [m, k] (A stored [k, m] when trans_a), op(B) is [k, n] (B stored [n, k] when trans_b); lda, ldb,
// ldc are the row strides of A, B, C as stored. beta = 0 overwrites C without reading it. Single-threaded.
void gemm_avx512(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
                 const float* a, std::size_t lda, const float* b, std::size_t ldb, float beta, float* c,
                 std::size_t ldc);

// The same product with op(A) (times alpha) and op(B) rounded to bf16 as they are packed, products summed in
// float32 by vdpbf16ps (bf16 mixed precision, core/runtime/precision.hpp). Only in builds that target
// AVX512_BF16 (gemm_bf16_available).
bool gemm_bf16_available();
void gemm_bf16(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
               const float* a, std::size_t lda, const float* b, std::size_t ldb, float beta, float* c,
               std::size_t ldc);

}  // namespace tg
