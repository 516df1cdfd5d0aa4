// Batch normalization kernels: per-channel statistics, the normalizing affine map and the backward, each a
// loop over channels (in parallel) of loops over contiguous H*W blocks; and the plain reference.
#include "core/kernels/batch_norm2d.hpp"

#include <algorithm>
#include <cstddef>
#include <vector>

#include "core/runtime/threads.hpp"

namespace tg {
namespace {

// Channels per thread so that each thread gets at least kElementGrain values: the loops are memory-bound and
// cheap per element, so small batches stay on one thread.
std::size_t channel_grain(const BatchNorm2dGeometry& g) {
  return std::max<std::size_t>(1, kElementGrain / std::max<std::size_t>(1, g.count()));
}

// The block of channel c in image i.
inline const float* block(const float* base, const BatchNorm2dGeometry& g, std::size_t i, std::size_t c) {
  return base + (i * g.c + c) * g.hw;
}
inline float* block(float* base, const BatchNorm2dGeometry& g, std::size_t i, std::size_t c) {
  return base + (i * g.c + c) * g.hw;
}

// kLanes independent double accumulators, added to lane by lane: the compiler turns the lane loop into four
// vectors of doubles, so the adds of a block neither wait on each other (a single double sum is bound by the
// add latency, ~1 ns per 4 floats) nor need reordering (which the compiler may not do to a double sum).
constexpr std::size_t kLanes = 32;
struct SumN {
  double a[kLanes] = {};
  double total() const {
    double t[kLanes / 2];
    for (std::size_t j = 0; j < kLanes / 2; ++j) t[j] = a[j] + a[j + kLanes / 2];
    double s = 0;
    for (std::size_t j = 0; j < kLanes / 2; ++j) s += t[j];
    return s;
  }
};

// s += the floats of block p [hw], lane j taking elements j, j + kLanes, ... (the tail: lane 0).
void add_block(SumN& s, const float* p, std::size_t hw) {
  std::size_t k = 0;
  for (; k + kLanes <= hw; k += kLanes)
    for (std::size_t j = 0; j < kLanes; ++j) s.a[j] += p[k + j];
  for (; k < hw; ++k) s.a[0] += p[k];
}

// s += (p - m)^2 over block p [hw], in the lanes as add_block.
void add_squared_deviations(SumN& s, const float* p, std::size_t hw, double m) {
  std::size_t k = 0;
  for (; k + kLanes <= hw; k += kLanes)
    for (std::size_t j = 0; j < kLanes; ++j) {
      const double d = p[k + j] - m;
      s.a[j] += d * d;
    }
  for (; k < hw; ++k) s.a[0] += (p[k] - m) * (p[k] - m);
}

// sum_dy += dy, sum_dy_xmu += dy * (x - m) over the blocks d (of dy) and p (of x) [hw].
void add_backward_sums(SumN& sum_dy, SumN& sum_dy_xmu, const float* d, const float* p, std::size_t hw,
                       float m) {
  std::size_t k = 0;
  for (; k + kLanes <= hw; k += kLanes)
    for (std::size_t j = 0; j < kLanes; ++j) {
      sum_dy.a[j] += d[k + j];
      sum_dy_xmu.a[j] += static_cast<double>(d[k + j]) * (p[k + j] - m);
    }
  for (; k < hw; ++k) {
    sum_dy.a[0] += d[k];
    sum_dy_xmu.a[0] += static_cast<double>(d[k]) * (p[k] - m);
  }
}

}  // namespace

// Every kernel runs over the channels [c0, c1) of a thread image by image: the blocks of one image's channels
// are contiguous, so a thread streams through memory (channel by channel over the whole batch, it would jump
// C * H*W floats between blocks of 1 KiB and wait for each). A channel's sums still run over the images in
// order, so results do not depend on the thread count.

void batch_norm2d_lanes_stats(const float* x, const BatchNorm2dGeometry& g, float* mean, float* var) {
  parallel_for(
      g.c,
      [&](std::size_t c0, std::size_t c1) {
        std::vector<SumN> sums(c1 - c0);
        for (std::size_t i = 0; i < g.n; ++i)
          for (std::size_t c = c0; c < c1; ++c) add_block(sums[c - c0], block(x, g, i, c), g.hw);
        // exact for one repeated value v: n * v needs at most 24 + 30 bits, and n * v / n is v again
        std::vector<double> m(c1 - c0);
        for (std::size_t c = c0; c < c1; ++c) {
          m[c - c0] = sums[c - c0].total() / static_cast<double>(g.count());
          sums[c - c0] = SumN{};
        }
        for (std::size_t i = 0; i < g.n; ++i)
          for (std::size_t c = c0; c < c1; ++c)
            add_squared_deviations(sums[c - c0], block(x, g, i, c), g.hw, m[c - c0]);
        for (std::size_t c = c0; c < c1; ++c) {
          mean[c] = static_cast<float>(m[c - c0]);
          var[c] = static_cast<float>(sums[c - c0].total() / static_cast<double>(g.count()));
        }
      },
      channel_grain(g));
}

void batch_norm2d_lanes_forward(const float* x, const BatchNorm2dGeometry& g, const float* mean,
                                const float* invstd, const float* weight, const float* bias, float* y) {
  parallel_for(
      g.c,
      [&](std::size_t c0, std::size_t c1) {
        for (std::size_t i = 0; i < g.n; ++i)
          for (std::size_t c = c0; c < c1; ++c) {
            const float m = mean[c], scale = weight[c] * invstd[c], b = bias[c];
            const float* p = block(x, g, i, c);
            float* q = block(y, g, i, c);
            // (x - m) * scale + b rather than x * scale + (b - m * scale): x == m gives exactly b
            for (std::size_t k = 0; k < g.hw; ++k) q[k] = (p[k] - m) * scale + b;
          }
      },
      channel_grain(g));
}

void batch_norm2d_lanes_backward(const float* dy, const float* x, const BatchNorm2dGeometry& g,
                                 const float* mean, const float* invstd, const float* weight, bool training,
                                 float* dx, float* dweight, float* dbias) {
  parallel_for(
      g.c,
      [&](std::size_t c0, std::size_t c1) {
        // pass 1: sum(dy), sum(dy * (x - mean)) per channel
        std::vector<SumN> sum_dy(c1 - c0), sum_dy_xmu(c1 - c0);
        for (std::size_t i = 0; i < g.n; ++i)
          for (std::size_t c = c0; c < c1; ++c)
            add_backward_sums(sum_dy[c - c0], sum_dy_xmu[c - c0], block(dy, g, i, c), block(x, g, i, c), g.hw,
                              mean[c]);
        // dx = scale * (dy - mean_dy - (x - m) * k_xmu): training, dy - mean(dy) - xhat * mean(dy * xhat)
        // with xhat * mean(dy * xhat) = (x - m) * k_xmu; fixed statistics, scale * dy.
        std::vector<float> scale(c1 - c0), mean_dy(c1 - c0), k_xmu(c1 - c0);
        const double count = static_cast<double>(g.count());
        for (std::size_t c = c0; c < c1; ++c) {
          const double s_dy = sum_dy[c - c0].total(), s_dy_xmu = sum_dy_xmu[c - c0].total(), is = invstd[c];
          dbias[c] = static_cast<float>(s_dy);
          dweight[c] = static_cast<float>(s_dy_xmu * is);
          scale[c - c0] = weight[c] * invstd[c];
          mean_dy[c - c0] = training ? static_cast<float>(s_dy / count) : 0.f;
          k_xmu[c - c0] = training ? static_cast<float>(s_dy_xmu / count * is * is) : 0.f;
        }
        // pass 2: dx
        for (std::size_t i = 0; i < g.n; ++i)
          for (std::size_t c = c0; c < c1; ++c) {
            const float* d = block(dy, g, i, c);
            float* o = block(dx, g, i, c);
            const float sc = scale[c - c0];
            if (!training) {
              for (std::size_t k = 0; k < g.hw; ++k) o[k] = d[k] * sc;
              continue;
            }
            const float* p = block(x, g, i, c);
            const float m = mean[c], md = mean_dy[c - c0], kx = k_xmu[c - c0];
            for (std::size_t k = 0; k < g.hw; ++k) o[k] = (d[k] - md - (p[k] - m) * kx) * sc;
          }
      },
      channel_grain(g));
}

// ---- reference --------------------------------------------------------------------------------------------

void batch_norm2d_reference_stats(const float* x, const BatchNorm2dGeometry& g, float* mean, float* var) {
  for (std::size_t c = 0; c < g.c; ++c) {
    double sum = 0;
    for (std::size_t i = 0; i < g.n; ++i)
      for (std::size_t k = 0; k < g.hw; ++k) sum += x[(i * g.c + c) * g.hw + k];
    const double m = sum / static_cast<double>(g.count());
    double squares = 0;
    for (std::size_t i = 0; i < g.n; ++i)
      for (std::size_t k = 0; k < g.hw; ++k) {
        const double d = x[(i * g.c + c) * g.hw + k] - m;
        squares += d * d;
      }
    mean[c] = static_cast<float>(m);
    var[c] = static_cast<float>(squares / static_cast<double>(g.count()));
  }
}

void batch_norm2d_reference_forward(const float* x, const BatchNorm2dGeometry& g, const float* mean,
                                    const float* invstd, const float* weight, const float* bias, float* y) {
  for (std::size_t i = 0; i < g.n; ++i)
    for (std::size_t c = 0; c < g.c; ++c)
      for (std::size_t k = 0; k < g.hw; ++k) {
        const std::size_t at = (i * g.c + c) * g.hw + k;
        const float xhat = (x[at] - mean[c]) * invstd[c];
        y[at] = xhat * weight[c] + bias[c];
      }
}

void batch_norm2d_reference_backward(const float* dy, const float* x, const BatchNorm2dGeometry& g,
                                     const float* mean, const float* invstd, const float* weight,
                                     bool training, float* dx, float* dweight, float* dbias) {
  for (std::size_t c = 0; c < g.c; ++c) {
    double sum_dy = 0, sum_dy_xhat = 0;
    for (std::size_t i = 0; i < g.n; ++i)
      for (std::size_t k = 0; k < g.hw; ++k) {
        const std::size_t at = (i * g.c + c) * g.hw + k;
        const double xhat = (static_cast<double>(x[at]) - mean[c]) * invstd[c];
        sum_dy += dy[at];
        sum_dy_xhat += dy[at] * xhat;
      }
    dbias[c] = static_cast<float>(sum_dy);
    dweight[c] = static_cast<float>(sum_dy_xhat);
    const double count = static_cast<double>(g.count());
    for (std::size_t i = 0; i < g.n; ++i)
      for (std::size_t k = 0; k < g.hw; ++k) {
        const std::size_t at = (i * g.c + c) * g.hw + k;
        const double xhat = (static_cast<double>(x[at]) - mean[c]) * invstd[c];
        const double d = training ? dy[at] - sum_dy / count - xhat * (sum_dy_xhat / count) : dy[at];
        dx[at] = static_cast<float>(static_cast<double>(weight[c]) * invstd[c] * d);
      }
  }
}

}  // namespace tg
