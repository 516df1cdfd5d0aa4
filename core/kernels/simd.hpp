// The SIMD helpers several kernel families share (conv2d direct and depthwise, pooling, the GEMM): the vector
// type, short-row copies and fills, a vector row sum, and the AVX-512 16 x 16 transpose. Everything here
// lives in tg::simd; what one family alone needs stays in its own files.
#pragma once

#include <cstddef>
#include <cstring>
#include <xsimd/xsimd.hpp>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace tg::simd {

using Batch = xsimd::batch<float>;
inline constexpr std::size_t V = Batch::size;  // floats per vector

// Keeps a loaded vector in a register: otherwise GCC folds the load into each FMA that uses it (a load per
// FMA instead of one, which made the dweight kernels load-bound).
inline Batch in_register(Batch b) {
#if defined(__GNUC__) && defined(__x86_64__)
  typename Batch::register_type r = b;
  asm("" : "+v"(r));
  return Batch(r);
#else
  return b;
#endif
}

inline std::size_t round_up(std::size_t n, std::size_t m) { return (n + m - 1) / m * m; }

// Short rows (8-32 floats in these nets) copied inline: a memmove call per row costs more than the row.
// Whole vectors, then the tail as one more vector ending at n (overlapping the last one: the same values
// again); a row shorter than a vector as two overlapping copies of 8 or 4 floats (fixed-size memcpys: one
// load and one store each).
inline void copy_row(const float* src, std::size_t n, float* dst) {
  if (n >= V) {
    std::size_t i = 0;
    for (; i + V <= n; i += V) Batch::load_unaligned(src + i).store_unaligned(dst + i);
    if (i < n) Batch::load_unaligned(src + n - V).store_unaligned(dst + n - V);
  } else if (n >= 8) {
    std::memcpy(dst, src, 8 * sizeof(float));
    std::memcpy(dst + n - 8, src + n - 8, 8 * sizeof(float));
  } else if (n >= 4) {
    std::memcpy(dst, src, 4 * sizeof(float));
    std::memcpy(dst + n - 4, src + n - 4, 4 * sizeof(float));
  } else {
    for (std::size_t i = 0; i < n; ++i) dst[i] = src[i];
  }
}
inline void zero_row(float* dst, std::size_t n) {
  std::size_t i = 0;
  for (; i + V <= n; i += V) Batch(0.f).store_unaligned(dst + i);
  for (; i < n; ++i) dst[i] = 0.f;
}

// The sum of n floats, with four vector accumulators (a scalar chain of dependent adds is latency-bound, 4
// cycles per element) and a double total: bias gradients, global average pooling.
inline double sum_row(const float* src, std::size_t n) {
  Batch a0(0.f), a1(0.f), a2(0.f), a3(0.f);
  std::size_t i = 0;
  for (; i + 4 * V <= n; i += 4 * V) {
    a0 += Batch::load_unaligned(src + i), a1 += Batch::load_unaligned(src + i + V);
    a2 += Batch::load_unaligned(src + i + 2 * V), a3 += Batch::load_unaligned(src + i + 3 * V);
  }
  for (; i + V <= n; i += V) a0 += Batch::load_unaligned(src + i);
  double s = static_cast<double>(xsimd::hadd((a0 + a1) + (a2 + a3)));
  for (; i < n; ++i) s += src[i];
  return s;
}

#if defined(__AVX512F__)
// GCC 12 warns about the intrinsics' own undefined pass-through operand (a known false positive).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// r[i][j] <- r[j][i] for 16 vectors of 16 floats (a block's layout changed in registers: the direct conv's
// lanes path, the GEMM's packing): unpack pairs, then pairs of pairs, then 128-bit lanes.
inline void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
    r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
    r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
    r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
  }
  // 0x88 picks 128-bit lanes 0, 2 of each operand, 0xdd lanes 1, 3
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xdd);
    t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xdd);
  }
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
  }
}
#pragma GCC diagnostic pop
#endif

}  // namespace tg::simd
