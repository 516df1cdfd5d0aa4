// The conv epilogue (ConvEpilogue of conv2d.hpp) over a row of one output channel, with the activation and
// whether there is a batch norm fixed at compile time so that the loop vectorizes. Internal to the kernels.
#pragma once

#include <cstddef>
#include <type_traits>
#include <xsimd/xsimd.hpp>

#include "core/kernels/conv2d.hpp"
#include "core/kernels/simd.hpp"

namespace tg {

// For `rows` rows of `n` floats (rows src_stride and dst_stride floats apart): dst[i] = the epilogue of
// channel o applied to src[i] + bias, with res[i] as the residual (res aligned with dst, or null). dst may be
// src (then src_stride == dst_stride).
using EpilogueRowFn = void (*)(const float* src, std::size_t src_stride, std::size_t rows, std::size_t n,
                               float bias, std::size_t o, const ConvEpilogue& e, const float* res, float* dst,
                               std::size_t dst_stride);

template <ConvActivation A, bool Affine, bool Res, class T>
inline T conv2d_epilogue_value(T v, T bias, T m, T s, T t, T r) {
  v = v + bias;
  if constexpr (Affine) v = (v - m) * s + t;
  if constexpr (Res) v = v + r;
  if constexpr (std::is_same_v<T, float>) {
    if constexpr (A == ConvActivation::ReLU) v = v > 0.f ? v : 0.f;
    if constexpr (A == ConvActivation::ReLU6) v = v < 0.f ? 0.f : (v > 6.f ? 6.f : v);
  } else {  // the same comparisons lane by lane: NaN gives 0 under ReLU and stays NaN under ReLU6, as
            // relu/relu6
    if constexpr (A == ConvActivation::ReLU) v = xsimd::select(v > T(0.f), v, T(0.f));
    if constexpr (A == ConvActivation::ReLU6) {
      v = xsimd::select(v < T(0.f), T(0.f), xsimd::select(v > T(6.f), T(6.f), v));
    }
  }
  return v;
}

template <ConvActivation A, bool Affine, bool Res>
void conv2d_epilogue_rows(const float* src, std::size_t src_stride, std::size_t rows, std::size_t n,
                          float bias, std::size_t o, const ConvEpilogue& e, const float* res, float* dst,
                          std::size_t dst_stride) {
  using simd::Batch;
  using simd::V;
  const float m = Affine ? e.mean[o] : 0.f, s = Affine ? e.scale[o] : 1.f, t = Affine ? e.shift[o] : 0.f;
  const Batch bv(bias), mv(m), sv(s), tv(t), zero(0.f);
  const bool overlap_tail = src != dst && n >= V;  // out of place: the last vector may overlap the one before
  for (std::size_t r = 0; r < rows; ++r) {
    const float* a = src + r * src_stride;
    const float* rr = Res ? res + r * dst_stride : nullptr;
    float* d = dst + r * dst_stride;
    const auto at = [&](std::size_t i) {
      return conv2d_epilogue_value<A, Affine, Res>(Batch::load_unaligned(a + i), bv, mv, sv, tv,
                                                   Res ? Batch::load_unaligned(rr + i) : zero);
    };
    std::size_t i = 0;
    for (; i + V <= n; i += V) at(i).store_unaligned(d + i);
    if (i < n && overlap_tail) {
      at(n - V).store_unaligned(d + n - V);
      continue;
    }
    for (; i < n; ++i) d[i] = conv2d_epilogue_value<A, Affine, Res>(a[i], bias, m, s, t, Res ? rr[i] : 0.f);
  }
}

template <ConvActivation A>
EpilogueRowFn conv2d_epilogue_rows_for(bool affine, bool res) {
  if (affine) return res ? &conv2d_epilogue_rows<A, true, true> : &conv2d_epilogue_rows<A, true, false>;
  return res ? &conv2d_epilogue_rows<A, false, true> : &conv2d_epilogue_rows<A, false, false>;
}

inline EpilogueRowFn conv2d_epilogue_row_fn(const ConvEpilogue& e) {
  const bool affine = e.scale != nullptr, res = e.residual != nullptr;
  switch (e.act) {
    case ConvActivation::ReLU:
      return conv2d_epilogue_rows_for<ConvActivation::ReLU>(affine, res);
    case ConvActivation::ReLU6:
      return conv2d_epilogue_rows_for<ConvActivation::ReLU6>(affine, res);
    case ConvActivation::None:
      break;
  }
  return conv2d_epilogue_rows_for<ConvActivation::None>(affine, res);
}

}  // namespace tg
