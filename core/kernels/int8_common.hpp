// What the int8 kernels share (conv2d_int8.cpp defines them; conv2d_int8_depthwise.cpp and linear_int8.cpp
// call them): quantizing a row of floats to bytes, and the float32 epilogue of a run of int32 sums. Each has
// a VNNI-target form and a plain C++ form giving the same bits (`vnni` picks).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/kernels/conv2d.hpp"

namespace tg::int8_common {

// dst[i] = quantize_u8(x[i], inv_scale, zero_point) for i < n; returns the values clipped beyond rounding.
std::size_t quantize_bytes(const float* x, std::size_t n, float inv_scale, int zero_point, std::uint8_t* dst,
                           bool vnni);
// dst[i] = act(fma(float(acc[i] - correction), scale, bias) + res[i]) for i < n (res may be null); ReLU as
// max(v, 0), ReLU6 as min(max(v, 0), 6), in vmaxps/vminps's order.
void store_run(const std::int32_t* acc, std::size_t n, std::int32_t correction, float scale, float bias,
               const float* res, ConvActivation act, float* dst, bool vnni);

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
