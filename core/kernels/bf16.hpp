// Float32 rows to bfloat16 with vcvtneps2bf16 (round to nearest even, denormals to zero), in the layouts the
// bf16 kernels read: plain, or pairs for vdpbf16ps. Internal to the kernels (conv2d_direct_bf16.cpp,
// gemm.cpp); only in builds that target AVX512_BF16.
#pragma once

#if defined(__AVX512BF16__) && defined(__AVX512BW__)
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

namespace tg::bfloat16 {

// The first min(16, n - i) lanes.
inline __mmask16 tail_mask(std::size_t left) {
  return static_cast<__mmask16>(left >= 16 ? 0xffffu : (1u << left) - 1u);
}

// dst[i] = bf16(a[i]) | bf16(b[i]) << 16 for i < n: a pair per uint32, its first value in the low half;
// b null: zero partners.
inline void to_pairs(const float* a, const float* b, std::size_t n, std::uint32_t* dst) {
  for (std::size_t i = 0; i < n; i += 16) {
    const __mmask16 mask = tail_mask(n - i);
    __m512i v =
        _mm512_maskz_cvtepu16_epi32(0xffff, (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mask, a + i)));
    if (b) {
      const __m512i hi = _mm512_maskz_cvtepu16_epi32(
          0xffff, (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mask, b + i)));
      v = _mm512_or_si512(v, _mm512_maskz_slli_epi32(0xffff, hi, 16));
    }
    _mm512_mask_storeu_epi32(dst + i, mask, v);
  }
}

// dst[i] = bf16(a[i]) for i < n.
inline void to_plain(const float* a, std::size_t n, std::uint16_t* dst) {
  for (std::size_t i = 0; i < n; i += 16) {
    const __mmask16 mask = tail_mask(n - i);
    _mm256_mask_storeu_epi16(dst + i, mask, (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mask, a + i)));
  }
}

}  // namespace tg::bfloat16
#endif
