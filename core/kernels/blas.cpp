#include "core/kernels/blas.hpp"

#include <cblas.h>

#include "core/kernels/gemm.hpp"
#include "core/runtime/threads.hpp"

namespace tg {
namespace {

// OpenBLAS single-threaded from the moment the library loads.
const bool g_single_threaded_blas = [] {
  openblas_set_num_threads(1);
  return true;
}();

// Matrix products (m, n > 1) run in tapegrad's AVX-512 kernel where the build has one
// (core/kernels/gemm.hpp).
bool g_own_gemm = gemm_avx512_available();

// C = alpha op(A) op(B) + beta C when m or n is 1, as SGEMV: SGEMM would first copy all of the other matrix
// into its packed panels (at batch 1, a 9216x128 linear layer spent more time in that copy than in the
// product), while SGEMV streams it once. A beta of 0 is applied as an explicit fill, so that the garbage of a
// fresh output buffer (possibly NaN bit patterns) cannot leak through 0 * NaN.
void sgemv_ld(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
              const float* a, std::size_t lda, const float* b, std::size_t ldb, float beta, float* c,
              std::size_t ldc) {
  const auto i = [](std::size_t v) { return static_cast<blasint>(v > 0 ? v : 1); };
  if (beta == 0.f || k == 0) scale_matrix(m, n, beta, c, ldc);
  if (k == 0) return;
  if (m == 1) {  // c[0, :] (n values, stride 1) = op(B)^T a, where a is op(A)'s one row
    const std::size_t incx = trans_a ? lda : 1;
    if (trans_b)  // B stored [n, k]
      cblas_sgemv(CblasRowMajor, CblasNoTrans, i(n), i(k), alpha, b, i(ldb), a, i(incx), beta, c, 1);
    else  // B stored [k, n]
      cblas_sgemv(CblasRowMajor, CblasTrans, i(k), i(n), alpha, b, i(ldb), a, i(incx), beta, c, 1);
  } else {  // n == 1: c[:, 0] (m values, stride ldc) = op(A) b, where b is op(B)'s one column
    const std::size_t incx = trans_b ? 1 : ldb;
    if (trans_a)  // A stored [k, m]
      cblas_sgemv(CblasRowMajor, CblasTrans, i(k), i(m), alpha, a, i(lda), b, i(incx), beta, c, i(ldc));
    else  // A stored [m, k]
      cblas_sgemv(CblasRowMajor, CblasNoTrans, i(m), i(k), alpha, a, i(lda), b, i(incx), beta, c, i(ldc));
  }
}

// Row-major SGEMM with explicit leading dimensions (for blocks of a larger product).
// bf16: gemm_bf16 for matrix products (matrix-vector products stay float32).
void sgemm_ld(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
              const float* a, std::size_t lda, const float* b, std::size_t ldb, float beta, float* c,
              std::size_t ldc, bool bf16 = false) {
  if (m == 0 || n == 0) return;
  if (m == 1 || n == 1) {  // a matrix-vector product (batch-1 inference of a linear layer)
    sgemv_ld(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  if (bf16) {
    gemm_bf16(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  if (g_own_gemm) {
    gemm_avx512(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              static_cast<blasint>(m), static_cast<blasint>(n), static_cast<blasint>(k), alpha, a,
              static_cast<blasint>(lda > 0 ? lda : 1), b, static_cast<blasint>(ldb > 0 ? ldb : 1), beta, c,
              static_cast<blasint>(ldc > 0 ? ldc : 1));
}

// Products below this many flops (2 m n k) run on the calling thread: they take tens of microseconds on one
// core, about what waking the pool's workers costs.
constexpr double kMinParallelFlops = 2e6;

}  // namespace

void sgemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
           const float* a, const float* b, float beta, float* c) {
  (void)g_single_threaded_blas;
  sgemm_ld(trans_a, trans_b, m, n, k, alpha, a, trans_a ? m : k, b, trans_b ? k : n, beta, c, n);
}

void sgemm_bf16(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
                const float* a, const float* b, float beta, float* c) {
  sgemm_ld(trans_a, trans_b, m, n, k, alpha, a, trans_a ? m : k, b, trans_b ? k : n, beta, c, n, true);
}

namespace {

void parallel_gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
                   const float* a, const float* b, float beta, float* c, bool bf16) {
  const auto threads = static_cast<std::size_t>(num_threads());
  const double flops = 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  const std::size_t lda = trans_a ? m : k, ldb = trans_b ? k : n;
  if (threads <= 1 || flops < kMinParallelFlops || (m < 2 * threads && n < 2 * threads)) {
    sgemm_ld(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, n, bf16);
    return;
  }
  if (m >= n) {  // blocks of rows of C: rows of op(A)
    parallel_for(threads, [&](std::size_t t0, std::size_t t1) {
      const std::size_t m0 = t0 * m / threads, m1 = t1 * m / threads;
      const float* a_block = trans_a ? a + m0 : a + m0 * lda;
      sgemm_ld(trans_a, trans_b, m1 - m0, n, k, alpha, a_block, lda, b, ldb, beta, c + m0 * n, n, bf16);
    });
  } else {  // blocks of columns of C: columns of op(B)
    parallel_for(threads, [&](std::size_t t0, std::size_t t1) {
      const std::size_t n0 = t0 * n / threads, n1 = t1 * n / threads;
      const float* b_block = trans_b ? b + n0 * ldb : b + n0;
      sgemm_ld(trans_a, trans_b, m, n1 - n0, k, alpha, a, lda, b_block, ldb, beta, c + n0, n, bf16);
    });
  }
}

}  // namespace

void parallel_sgemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
                    const float* a, const float* b, float beta, float* c) {
  parallel_gemm(trans_a, trans_b, m, n, k, alpha, a, b, beta, c, false);
}

void parallel_sgemm_bf16(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
                         const float* a, const float* b, float beta, float* c) {
  parallel_gemm(trans_a, trans_b, m, n, k, alpha, a, b, beta, c, true);
}

void set_own_gemm(bool on) { g_own_gemm = on && gemm_avx512_available(); }
bool own_gemm() { return g_own_gemm; }

}  // namespace tg
