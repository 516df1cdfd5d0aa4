// The blocked AVX-512 SGEMM of gemm.hpp: packing of op(A) and op(B) into panels, and the 8 x 32 register
// tile.
#include "core/kernels/gemm.hpp"
#include "core/kernels/bf16.hpp"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/base/error.hpp"
#include "core/kernels/simd.hpp"

namespace tg {

#if defined(__AVX512F__)
namespace {

// Register tile kMR x kNR: 8 rows x 2 zmm vectors = 16 accumulators, plus 2 loads of B and a broadcast of A
// per step. Cache blocks: an A panel (kMR x kKC, 8 KiB) and a B panel (kKC x kNR, 32 KiB) per tile, op(A)'s
// block (kMC x kKC, 128 KiB) stays in L2, op(B)'s (kKC x kNC, 2 MiB) in L3.
constexpr std::size_t kMR = 8, kNR = 32, kKC = 256, kMC = 128, kNC = 2048;

// GCC 12 warns about the 256-bit extracts' own undefined pass-through operand (a known false positive).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// op(A)[i0 : i0 + mc, p0 : p0 + kc] * alpha into panels of kMR rows: ap[panel][p][r], rows past mc zero.
// A stored [m, k] (activations) goes through 16 x 16 register transposes, two panels at a time; the rest
// element by element.
void pack_a(bool trans_a, const float* a, std::size_t lda, std::size_t i0, std::size_t mc, std::size_t p0,
            std::size_t kc, float alpha, float* ap) {
  std::size_t ir = 0;
  if (!trans_a) {
    const __m512 va = _mm512_set1_ps(alpha);
    for (; ir + 16 <= mc; ir += 16) {
      float* panel0 = ap + ir * kc;       // rows ir .. ir+7
      float* panel1 = panel0 + kMR * kc;  // rows ir+8 .. ir+15
      std::size_t p = 0;
      for (; p + 16 <= kc; p += 16) {
        __m512 r[16];
        for (std::size_t i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(a + (i0 + ir + i) * lda + p0 + p);
        simd::transpose16(r);  // r[q] = column p + q of the 16 rows
        for (std::size_t q = 0; q < 16; ++q) {
          const __m512 v = _mm512_mul_ps(va, r[q]);
          _mm256_storeu_ps(panel0 + (p + q) * kMR, _mm512_castps512_ps256(v));
          _mm256_storeu_ps(panel1 + (p + q) * kMR, _mm512_extractf32x8_ps(v, 1));
        }
      }
      for (; p < kc; ++p)
        for (std::size_t r = 0; r < 16; ++r)
          (r < kMR ? panel0 : panel1)[p * kMR + r % kMR] = alpha * a[(i0 + ir + r) * lda + p0 + p];
    }
  }
  for (; ir < mc; ir += kMR) {
    const std::size_t rows = std::min(kMR, mc - ir);
    float* panel = ap + ir * kc;
    for (std::size_t p = 0; p < kc; ++p) {
      for (std::size_t r = 0; r < rows; ++r) {
        const std::size_t i = i0 + ir + r, kk = p0 + p;
        panel[p * kMR + r] = alpha * (trans_a ? a[kk * lda + i] : a[i * lda + kk]);
      }
      for (std::size_t r = rows; r < kMR; ++r) panel[p * kMR + r] = 0.f;
    }
  }
}

#pragma GCC diagnostic pop

// op(B)[p0 : p0 + kc, j0 : j0 + nc] into panels of kNR columns: bp[panel][p][j], columns past nc zero. B
// stored [n, k] (a linear layer's weight) is read row by row, so each read is contiguous and the writes stay
// inside one 32 KiB panel.
void pack_b(bool trans_b, const float* b, std::size_t ldb, std::size_t p0, std::size_t kc, std::size_t j0,
            std::size_t nc, float* bp) {
  for (std::size_t jr = 0; jr < nc; jr += kNR) {
    const std::size_t cols = std::min(kNR, nc - jr);
    float* panel = bp + jr * kc;
    if (trans_b && cols == kNR) {  // 16 x 16 register transposes
      for (std::size_t half = 0; half < kNR; half += 16) {
        std::size_t p = 0;
        for (; p + 16 <= kc; p += 16) {
          __m512 r[16];
          for (std::size_t i = 0; i < 16; ++i)
            r[i] = _mm512_loadu_ps(b + (j0 + jr + half + i) * ldb + p0 + p);
          simd::transpose16(r);
          for (std::size_t q = 0; q < 16; ++q) _mm512_storeu_ps(panel + (p + q) * kNR + half, r[q]);
        }
        for (; p < kc; ++p)
          for (std::size_t j = half; j < half + 16; ++j) panel[p * kNR + j] = b[(j0 + jr + j) * ldb + p0 + p];
      }
    } else if (trans_b) {
      for (std::size_t j = 0; j < cols; ++j) {
        const float* row = b + (j0 + jr + j) * ldb + p0;
        for (std::size_t p = 0; p < kc; ++p) panel[p * kNR + j] = row[p];
      }
      for (std::size_t j = cols; j < kNR; ++j)
        for (std::size_t p = 0; p < kc; ++p) panel[p * kNR + j] = 0.f;
    } else {
      for (std::size_t p = 0; p < kc; ++p) {
        const float* row = b + (p0 + p) * ldb + j0 + jr;
        std::copy(row, row + cols, panel + p * kNR);
        std::fill(panel + p * kNR + cols, panel + (p + 1) * kNR, 0.f);
      }
    }
  }
}

// C[0 : rows, 0 : cols] = acc + beta C (beta = 0 does not read C): a tile's accumulators, stored.
void store_tile(const __m512 (&acc)[kMR][2], float* c, std::size_t ldc, std::size_t rows, std::size_t cols,
                float beta) {
  const auto mask = [](std::size_t n) {  // the first n (<= 16) lanes
    return static_cast<__mmask16>(n >= 16 ? 0xFFFFu : (1u << n) - 1u);
  };
  const __mmask16 m0 = mask(cols), m1 = mask(cols > 16 ? cols - 16 : 0);
  const __m512 vbeta = _mm512_set1_ps(beta);
  for (std::size_t r = 0; r < rows; ++r) {
    float* row = c + r * ldc;
    __m512 v0 = acc[r][0], v1 = acc[r][1];
    if (beta != 0.f) {
      v0 = _mm512_fmadd_ps(vbeta, _mm512_maskz_loadu_ps(m0, row), v0);
      v1 = _mm512_fmadd_ps(vbeta, _mm512_maskz_loadu_ps(m1, row + 16), v1);
    }
    _mm512_mask_storeu_ps(row, m0, v0);
    _mm512_mask_storeu_ps(row + 16, m1, v1);
  }
}

// C[0 : rows, 0 : cols] (row stride ldc) = sum over p < kc of ap[p][r] * bp[p][j] + beta C; beta = 0 does
// not read C. The first `rows` of the kMR rows and `cols` of the kNR columns are stored.
void gemm_tile(std::size_t kc, const float* ap, const float* bp, float* c, std::size_t ldc, std::size_t rows,
               std::size_t cols, float beta) {
  __m512 acc[kMR][2];
#pragma GCC unroll 8
  for (std::size_t r = 0; r < kMR; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (std::size_t p = 0; p < kc; ++p) {
    const __m512 b0 = _mm512_loadu_ps(bp + p * kNR), b1 = _mm512_loadu_ps(bp + p * kNR + 16);
#pragma GCC unroll 8
    for (std::size_t r = 0; r < kMR; ++r) {
      const __m512 av = _mm512_set1_ps(ap[p * kMR + r]);
      acc[r][0] = _mm512_fmadd_ps(av, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(av, b1, acc[r][1]);
    }
  }
  store_tile(acc, c, ldc, rows, cols, beta);
}

// The packed panels of one thread, kept from call to call (op(B)'s block is up to 2 MiB).
std::vector<float>& packed(int which) {
  thread_local std::vector<float> buffers[2];
  return buffers[which];
}

// ---- bf16: the same blocks, each packed panel converted to pairs of bf16 along the inner dimension ----
#if defined(__AVX512BF16__) && defined(__AVX512BW__)
// A packed panel [kc][width] (width = kMR or kNR floats) as [ceil(kc/2)][width] pairs: pair (p, j) holds
// bf16(panel[2p][j]) in its low half and bf16(panel[2p+1][j]) (0 past kc) in its high half.
void pair_panel(const float* src, std::size_t kc, std::size_t width, std::uint32_t* dst) {
  for (std::size_t p = 0; p < kc; p += 2)
    bfloat16::to_pairs(src + p * width, p + 1 < kc ? src + (p + 1) * width : nullptr, width,
                       dst + p / 2 * width);
}

// gemm_tile on pair panels: kc2 pairs, one vdpbf16ps per (row, vector of 16 columns) and pair.
void gemm_tile_bf16(std::size_t kc2, const std::uint32_t* ap, const std::uint32_t* bp, float* c,
                    std::size_t ldc, std::size_t rows, std::size_t cols, float beta) {
  __m512 acc[kMR][2];
#pragma GCC unroll 8
  for (std::size_t r = 0; r < kMR; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (std::size_t p = 0; p < kc2; ++p) {
    const auto b0 = (__m512bh)_mm512_loadu_si512(bp + p * kNR);
    const auto b1 = (__m512bh)_mm512_loadu_si512(bp + p * kNR + 16);
#pragma GCC unroll 8
    for (std::size_t r = 0; r < kMR; ++r) {
      const auto av = (__m512bh)_mm512_set1_epi32(static_cast<int>(ap[p * kMR + r]));
      acc[r][0] = _mm512_dpbf16_ps(acc[r][0], av, b0);
      acc[r][1] = _mm512_dpbf16_ps(acc[r][1], av, b1);
    }
  }
  store_tile(acc, c, ldc, rows, cols, beta);
}

std::vector<std::uint32_t>& packed_pairs(int which) {
  thread_local std::vector<std::uint32_t> buffers[2];
  return buffers[which];
}
#endif

}  // namespace

bool gemm_avx512_available() { return true; }

namespace {

// The blocks of both products: op(B)'s block of kKC x kNC and op(A)'s of kMC x kKC packed, then the tiles.
// Bf16: each packed panel paired to bf16 along the inner dimension (pair_panel) and gemm_tile_bf16 run.
template <bool Bf16>
void gemm_blocks(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
                 const float* a, std::size_t lda, const float* b, std::size_t ldb, float beta, float* c,
                 std::size_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    scale_matrix(m, n, beta, c, ldc);
    return;
  }
  std::vector<float>& ap = packed(0);
  std::vector<float>& bp = packed(1);
  ap.resize(kMC * kKC);
  bp.resize(kKC * kNC);
#if defined(__AVX512BF16__) && defined(__AVX512BW__)
  std::vector<std::uint32_t>& apb = packed_pairs(0);
  std::vector<std::uint32_t>& bpb = packed_pairs(1);
  if constexpr (Bf16) {
    apb.resize(kMC * kKC / 2);
    bpb.resize(kKC * kNC / 2);
  }
#endif
  for (std::size_t j0 = 0; j0 < n; j0 += kNC) {
    const std::size_t nc = std::min(kNC, n - j0);
    for (std::size_t p0 = 0; p0 < k; p0 += kKC) {
      const std::size_t kc = std::min(kKC, k - p0), kc2 = (kc + 1) / 2;
      const float tile_beta = p0 == 0 ? beta : 1.f;  // later blocks of the inner dimension accumulate
      pack_b(trans_b, b, ldb, p0, kc, j0, nc, bp.data());
#if defined(__AVX512BF16__) && defined(__AVX512BW__)
      if constexpr (Bf16)
        for (std::size_t jr = 0; jr < nc; jr += kNR)
          pair_panel(bp.data() + jr * kc, kc, kNR, bpb.data() + jr * kc2);
#endif
      for (std::size_t i0 = 0; i0 < m; i0 += kMC) {
        const std::size_t mc = std::min(kMC, m - i0);
        pack_a(trans_a, a, lda, i0, mc, p0, kc, alpha, ap.data());
#if defined(__AVX512BF16__) && defined(__AVX512BW__)
        if constexpr (Bf16)
          for (std::size_t ir = 0; ir < mc; ir += kMR)
            pair_panel(ap.data() + ir * kc, kc, kMR, apb.data() + ir * kc2);
#endif
        for (std::size_t jr = 0; jr < nc; jr += kNR) {
          for (std::size_t ir = 0; ir < mc; ir += kMR) {
            float* tile = c + (i0 + ir) * ldc + j0 + jr;
            const std::size_t rows = std::min(kMR, mc - ir), cols = std::min(kNR, nc - jr);
#if defined(__AVX512BF16__) && defined(__AVX512BW__)
            if constexpr (Bf16) {
              gemm_tile_bf16(kc2, apb.data() + ir * kc2, bpb.data() + jr * kc2, tile, ldc, rows, cols,
                             tile_beta);
              continue;
            }
#endif
            gemm_tile(kc, ap.data() + ir * kc, bp.data() + jr * kc, tile, ldc, rows, cols, tile_beta);
          }
        }
      }
    }
  }
}

}  // namespace

void gemm_avx512(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
                 const float* a, std::size_t lda, const float* b, std::size_t ldb, float beta, float* c,
                 std::size_t ldc) {
  gemm_blocks<false>(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

#if defined(__AVX512BF16__) && defined(__AVX512BW__)
bool gemm_bf16_available() { return true; }

void gemm_bf16(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
               const float* a, std::size_t lda, const float* b, std::size_t ldb, float beta, float* c,
               std::size_t ldc) {
  gemm_blocks<true>(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
#else
bool gemm_bf16_available() { return false; }

void gemm_bf16(bool, bool, std::size_t, std::size_t, std::size_t, float, const float*, std::size_t,
               const float*, std::size_t, float, float*, std::size_t) {
  fail("gemm_bf16: this build does not target AVX512_BF16");
}
#endif

#else

bool gemm_avx512_available() { return false; }
bool gemm_bf16_available() { return false; }

void gemm_bf16(bool, bool, std::size_t, std::size_t, std::size_t, float, const float*, std::size_t,
               const float*, std::size_t, float, float*, std::size_t) {
  fail("gemm_bf16: this build has no AVX-512");
}

void gemm_avx512(bool, bool, std::size_t, std::size_t, std::size_t, float, const float*, std::size_t,
                 const float*, std::size_t, float, float*, std::size_t) {
  fail("gemm_avx512: this build has no AVX-512 (compile with -march=native on a CPU that has it)");
}

#endif

}  // namespace tg
