// What the int8 kernels share (conv2d_int8.cpp defines them; conv2d_int8_depthwise.cpp and linear_int8.cpp
// call them): quantizing a row of floats to bytes, and the float32 epilogue of a run of int32 sums. Each has
// a VNNI-target form and a plain C++ form giving the same bits (`vnni` picks).
#pragma once

#include <cstddef>
#include <cstdint>

#include <immintrin.h>

#include "core/kernels/conv2d.hpp"

// The instruction sets of the int8 kernels: function targets, so that any build has them (checked at run
// time).
#define TG_INT8 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

namespace tg::int8_common {

// dst[i] = quantize_u8(x[i], inv_scale, zero_point) for i < n; returns the values clipped beyond rounding.
std::size_t quantize_bytes(const float* x, std::size_t n, float inv_scale, int zero_point, std::uint8_t* dst,
                           bool vnni);
// Per output row of weight [rows][cols]: scale[o] = max |w| / 127 (1 for an all-zero or non-finite row),
// q = round(w / scale) in [-127, 127] (NaN: 0). The conv and linear packings' quantization.
void quantize_weight_rows(const float* weight, std::size_t rows, std::size_t cols, std::int8_t* q,
                          float* scale);

// quantize_u8 on 16 lanes at a time, for one scale and zero point: q as int32 lanes (masked-off lanes: 0 +
// zp), the lanes clipped beyond rounding added to `clipped`. Max first: a NaN becomes lo (vmaxps returns its
// second operand), then vcvtps2dq rounds to nearest even, as quantize_u8 does.
struct QuantizeLanes {
  __m512 inv, lo, hi, lo_clip, hi_clip;
  __m512i zp;
  TG_INT8 QuantizeLanes(float inv_scale, int zero_point)
      : inv(_mm512_set1_ps(inv_scale)),
        lo(_mm512_set1_ps(static_cast<float>(-zero_point))),
        hi(_mm512_set1_ps(static_cast<float>(255 - zero_point))),
        lo_clip(_mm512_set1_ps(static_cast<float>(-zero_point) - 0.5f)),
        hi_clip(_mm512_set1_ps(static_cast<float>(255 - zero_point) + 0.5f)),
        zp(_mm512_set1_epi32(zero_point)) {}
  TG_INT8 __m512i operator()(const float* x, __mmask16 m, std::size_t& clipped) const {
    const __m512 t = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x), inv);
    clipped +=
        static_cast<std::size_t>(__builtin_popcount(_mm512_mask_cmp_ps_mask(m, t, lo_clip, _CMP_LT_OQ) |
                                                    _mm512_mask_cmp_ps_mask(m, t, hi_clip, _CMP_GT_OQ)));
    return _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(t, lo), hi)), zp);
  }
};

// Runs Tile<mr, nv>::run(args...) for mr in 1..6 and nv in 1..4 known at run time: the int8 tiles are
// templates on their register blocking (MR rows of NV vectors of 16 lanes), and the edges of a layer take the
// smaller ones.
template <template <int, int> class Tile, int MR, class... Args>
void dispatch_vectors(int nv, Args... args) {
  switch (nv) {
    case 1:
      Tile<MR, 1>::run(args...);
      break;
    case 2:
      Tile<MR, 2>::run(args...);
      break;
    case 3:
      Tile<MR, 3>::run(args...);
      break;
    default:
      Tile<MR, 4>::run(args...);
      break;
  }
}
template <template <int, int> class Tile, class... Args>
void dispatch_tile(int mr, int nv, Args... args) {
  switch (mr) {
    case 1:
      dispatch_vectors<Tile, 1>(nv, args...);
      break;
    case 2:
      dispatch_vectors<Tile, 2>(nv, args...);
      break;
    case 3:
      dispatch_vectors<Tile, 3>(nv, args...);
      break;
    case 4:
      dispatch_vectors<Tile, 4>(nv, args...);
      break;
    case 5:
      dispatch_vectors<Tile, 5>(nv, args...);
      break;
    default:
      dispatch_vectors<Tile, 6>(nv, args...);
      break;
  }
}

}  // namespace tg::int8_common
