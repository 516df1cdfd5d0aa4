// What the int8 kernels share beside their tiles (int8_common.hpp, conv2d_int8.hpp): the CPU check, the
// quantization of values (quantize_u8, rows of bytes) and of weights (per output row), and the conv weights'
// packing.
#include <immintrin.h>
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/kernels/conv2d_int8.hpp"
#include "core/kernels/int8_common.hpp"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace tg {
namespace int8_quantize {

std::atomic<bool> g_fallback{false};
constexpr std::size_t kLanes = 16;

// x [n] to bytes (q of quantize_u8); returns the values clipped beyond rounding.
std::size_t quantize_bytes_plain(const float* x, std::size_t n, float inv, int zp, std::uint8_t* dst) {
  const float lo = static_cast<float>(-zp), hi = static_cast<float>(255 - zp);
  std::size_t clipped = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const float t = x[i] * inv;
    clipped += (t < lo - 0.5f || t > hi + 0.5f) ? 1 : 0;
    dst[i] = quantize_u8(x[i], inv, zp);
  }
  return clipped;
}

TG_INT8 std::size_t quantize_bytes_vnni(const float* x, std::size_t n, float inv, int zp, std::uint8_t* dst) {
  const int8_common::QuantizeLanes quantize(inv, zp);
  std::size_t clipped = 0;
  for (std::size_t i = 0; i < n; i += kLanes) {
    const __mmask16 m = static_cast<__mmask16>(n - i >= kLanes ? 0xffffu : (1u << (n - i)) - 1u);
    _mm_mask_storeu_epi8(dst + i, m, _mm512_cvtepi32_epi8(quantize(x + i, m, clipped)));
  }
  return clipped;
}

}  // namespace int8_quantize

namespace int8_common {

std::size_t quantize_bytes(const float* x, std::size_t n, float inv_scale, int zero_point, std::uint8_t* dst,
                           bool vnni) {
  return vnni ? int8_quantize::quantize_bytes_vnni(x, n, inv_scale, zero_point, dst)
              : int8_quantize::quantize_bytes_plain(x, n, inv_scale, zero_point, dst);
}

void quantize_weight_rows(const float* weight, std::size_t rows, std::size_t cols, std::int8_t* q,
                          float* scale) {
  for (std::size_t o = 0; o < rows; ++o) {
    const float* w = weight + o * cols;
    float m = 0.f;
    for (std::size_t i = 0; i < cols; ++i) m = std::max(m, std::fabs(w[i]));
    scale[o] = m > 0.f && std::isfinite(m) ? m / 127.f : 1.f;
    for (std::size_t i = 0; i < cols; ++i) {
      const float t = std::clamp(std::nearbyint(w[i] / scale[o]), -127.f, 127.f);
      q[o * cols + i] = static_cast<std::int8_t>(std::isnan(t) ? 0.f : t);
    }
  }
}

}  // namespace int8_common

std::string int8_vnni_unsupported_reason() {
  using namespace int8_quantize;
  if (g_fallback.load()) return "this CPU's AVX512_VNNI instructions are hidden (force_int8_fallback)";
  static const bool env_hidden = [] {
    const char* env = std::getenv("TAPEGRAD_NO_VNNI");
    return env && *env && std::strcmp(env, "0") != 0;
  }();
  if (env_hidden) return "this CPU's AVX512_VNNI instructions are hidden (TAPEGRAD_NO_VNNI is set)";
  static const bool has = __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl");
  if (!has) {
    return "this CPU has no AVX512_VNNI instructions (vpdpbusd: Cascade Lake, Ice Lake, Zen 4 and later); "
           "the "
           "int8 kernels run in plain C++";
  }
  return "";
}

bool int8_vnni_supported() { return int8_vnni_unsupported_reason().empty(); }

void force_int8_fallback(bool on) { int8_quantize::g_fallback.store(on); }

std::uint8_t quantize_u8(float x, float inv_scale, int zero_point) {
  float t = x * inv_scale;
  const float lo = static_cast<float>(-zero_point), hi = static_cast<float>(255 - zero_point);
  if (!(t >= lo)) t = lo;  // NaN too
  if (t > hi) t = hi;
  return static_cast<std::uint8_t>(static_cast<int>(std::nearbyint(t)) + zero_point);
}

Conv2dInt8Weights pack_conv2d_int8(const std::int8_t* q, const float* scale, const Conv2dGeometry& g) {
  const std::size_t cig = g.c_in / g.groups, cog = g.c_out / g.groups, kk = g.kh * g.kw;
  const std::size_t quads_in = (g.c_in + 3) / 4;
  Conv2dInt8Weights w;
  w.c_out = g.c_out;
  // The quads a group's channels [gi * cig, (gi + 1) * cig) touch; every group reads as many (the most any
  // needs), starting early enough to stay inside the image's quads.
  for (std::size_t gi = 0; gi < g.groups; ++gi)
    w.quads = std::max(w.quads, ((gi + 1) * cig + 3) / 4 - gi * cig / 4);
  w.quad_base.resize(g.groups);
  for (std::size_t gi = 0; gi < g.groups; ++gi) w.quad_base[gi] = std::min(gi * cig / 4, quads_in - w.quads);
  w.steps = kk * w.quads;
  w.words.assign(g.c_out * w.steps, 0);
  w.sums.assign(g.c_out, 0);
  w.scale.assign(scale, scale + g.c_out);
  for (std::size_t o = 0; o < g.c_out; ++o) {
    const std::size_t gi = o / cog;
    for (std::size_t ci = 0; ci < cig; ++ci) {
      const std::size_t c = gi * cig + ci;  // the input channel
      const std::size_t j = c / 4 - w.quad_base[gi], b = c % 4;
      for (std::size_t k = 0; k < kk; ++k) {
        const std::int8_t v = q[(o * cig + ci) * kk + k];
        auto& word = w.words[o * w.steps + k * w.quads + j];
        word =
            static_cast<std::int32_t>(static_cast<std::uint32_t>(word) |
                                      (static_cast<std::uint32_t>(static_cast<std::uint8_t>(v)) << (8 * b)));
        w.sums[o] += v;
      }
    }
  }
  return w;
}

Conv2dInt8Weights pack_conv2d_int8(const float* weight, const Conv2dGeometry& g) {
  std::vector<std::int8_t> q(g.c_out * g.patch());
  std::vector<float> scale(g.c_out);
  int8_common::quantize_weight_rows(weight, g.c_out, g.patch(), q.data(), scale.data());
  return pack_conv2d_int8(q.data(), scale.data(), g);
}

}  // namespace tg
