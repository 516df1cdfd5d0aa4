// The one place tapegrad talks to BLAS. Row-major SGEMM: C[m,n] = alpha op(A) op(B) + beta C.
// OpenBLAS always runs single-threaded inside tapegrad; parallel_sgemm splits a product over tapegrad's
// own threads instead, so the two never oversubscribe the cores.
#pragma once

#include <cstddef>

namespace tg {

// op(A) is [m, k] (A stored [k, m] when trans_a), op(B) is [k, n] (B stored [n, k] when trans_b); all
// row-major and contiguous. beta = 0 overwrites C, beta = 1 accumulates into it. Runs on the calling thread.
void sgemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
           const float* a, const float* b, float beta, float* c);

// The same product split into blocks of rows (or columns) of C, one per thread of tg::num_threads().
void parallel_sgemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
                    const float* a, const float* b, float beta, float* c);

// The same two with op(A) and op(B) rounded to bf16 and the products summed in float32 (gemm_bf16 of
// gemm.hpp; bf16 mixed precision). Matrix-vector products (m or n = 1) stay float32. Only where
// gemm_bf16_available().
void sgemm_bf16(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
                const float* a, const float* b, float beta, float* c);
void parallel_sgemm_bf16(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
                         const float* a, const float* b, float beta, float* c);

// Whether sgemm runs matrix products (m, n > 1) in tapegrad's AVX-512 kernel (core/kernels/gemm.hpp; the
// default where the build has AVX-512) or in OpenBLAS (off; always without AVX-512). For tests and
// benchmarks.
void set_own_gemm(bool on);
bool own_gemm();

}  // namespace tg
