// tg::sgemm and tg::parallel_sgemm (core/kernels/blas.hpp) against a plain triple loop, for the four
// transpose combinations, overwriting (beta = 0) and accumulating (beta = 1).
#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

#include "core/kernels/blas.hpp"
#include "core/runtime/random.hpp"
#include "test_util.hpp"

namespace {

std::vector<float> random_matrix(std::size_t n, std::uint64_t seed) {
  tg::Generator gen(seed);
  std::vector<float> v(n);
  for (float& x : v) x = gen.uniform(-1.f, 1.f);
  return v;
}

// C[m,n] = alpha op(A) op(B) + beta C, row-major, accumulated in double.
std::vector<float> reference_gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k,
                                  float alpha, const std::vector<float>& a, const std::vector<float>& b,
                                  float beta, std::vector<float> c) {
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      double s = 0.0;
      for (std::size_t p = 0; p < k; ++p) {
        const float av = trans_a ? a[p * m + i] : a[i * k + p];
        const float bv = trans_b ? b[j * k + p] : b[p * n + j];
        s += static_cast<double>(av) * bv;
      }
      c[i * n + j] =
          static_cast<float>(alpha * s + (beta == 0.f ? 0.0 : beta * static_cast<double>(c[i * n + j])));
    }
  return c;
}

using Gemm = void (*)(bool, bool, std::size_t, std::size_t, std::size_t, float, const float*, const float*,
                      float, float*);

void check_gemm(Gemm gemm, std::size_t m, std::size_t n, std::size_t k, float initial_c = 0.f) {
  for (const bool trans_a : {false, true})
    for (const bool trans_b : {false, true})
      for (const float beta : {0.f, 1.f}) {
        INFO("m ", m, " n ", n, " k ", k, " trans_a ", trans_a, " trans_b ", trans_b, " beta ", beta);
        const std::vector<float> a = random_matrix(m * k, 1), b = random_matrix(k * n, 2);
        std::vector<float> c0 = random_matrix(m * n, 3);
        if (beta == 0.f && initial_c != 0.f)
          c0.assign(m * n, initial_c);  // garbage that beta 0 must not read
        const std::vector<float> expected = reference_gemm(trans_a, trans_b, m, n, k, 0.5f, a, b, beta, c0);
        std::vector<float> c = c0;
        gemm(trans_a, trans_b, m, n, k, 0.5f, a.data(), b.data(), beta, c.data());
        for (std::size_t i = 0; i < c.size(); ++i) {
          if (!(std::abs(c[i] - expected[i]) <= 1e-4f + 1e-4f * std::abs(expected[i]))) {
            FAIL_CHECK("element ", i, ": got ", c[i], ", expected ", expected[i]);
            break;
          }
        }
      }
}

}  // namespace

TEST_CASE("sgemm agrees with a triple loop for every transpose combination, beta 0 and 1") {
  check_gemm(tg::sgemm, 7, 5, 3);
  check_gemm(tg::sgemm, 33, 17, 65);
  check_gemm(tg::sgemm, 1, 9, 4);
}

TEST_CASE("parallel_sgemm agrees with a triple loop, split by rows and by columns") {
  check_gemm(tg::parallel_sgemm, 160, 96, 130);  // more rows than columns: blocks of rows (above 2 MFLOP)
  check_gemm(tg::parallel_sgemm, 40, 300, 128);  // more columns: blocks of columns
  check_gemm(tg::parallel_sgemm, 7, 5, 3);       // small: on the calling thread
}

TEST_CASE("sgemm and parallel_sgemm with one row or one column (SGEMV) agree; beta 0 overwrites NaN") {
  constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
  for (const float initial : {0.f, kNaN}) {
    CAPTURE(initial);
    check_gemm(tg::sgemm, 1, 128, 300, initial);  // batch-1 linear layer
    check_gemm(tg::sgemm, 37, 1, 50, initial);    // one output column
    check_gemm(tg::sgemm, 1, 1, 5, initial);
    check_gemm(tg::sgemm, 1, 9, 0, initial);                // no inner dimension: C = beta C
    check_gemm(tg::parallel_sgemm, 1, 4000, 600, initial);  // split into blocks of columns, each a GEMV
    check_gemm(tg::parallel_sgemm, 3000, 1, 700, initial);  // blocks of rows
  }
}

TEST_CASE(
    "tapegrad's AVX-512 GEMM and OpenBLAS both agree with a triple loop across the GEMM's cache blocks") {
  // 131 rows: a block of 128 and a partial one (with a partial 8-row panel); 2050 columns: past the 2048 of a
  // packed block of op(B); 300 inner: a full block of 256 and a partial one, with a tail of the 16-wide
  // packing.
  for (const bool own : {true, false}) {
    CAPTURE(own);
    const test_util::ScopedOwnGemm setting(own);  // restored also when a REQUIRE fails
    check_gemm(tg::sgemm, 131, 2050, 300);
    check_gemm(tg::sgemm, 16, 64, 9);  // whole 16-row and 32-column packs, an inner dimension below 16
  }
}
