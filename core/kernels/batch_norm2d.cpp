// Batch normalization kernels: per-channel statistics, the normalizing affine map and the backward, each a
// loop over channels (in parallel) of loops over contiguous H*W blocks; and the plain reference.
#include "core/kernels/batch_norm2d.hpp"

#include <algorithm>
#include <cstddef>

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

// Four independent double accumulators: the additions need not wait for each other, and the compiler may
// keep them in vector registers (it may not reorder one double sum).
struct Sum4 {
  double a[4] = {0, 0, 0, 0};
  double total() const { return (a[0] + a[1]) + (a[2] + a[3]); }
};

}  // namespace

void batch_norm2d_stats(const float* x, const BatchNorm2dGeometry& g, float* mean, float* var) {
  parallel_for(
      g.c,
      [&](std::size_t c0, std::size_t c1) {
        for (std::size_t c = c0; c < c1; ++c) {
          Sum4 s;
          for (std::size_t i = 0; i < g.n; ++i) {
            const float* p = block(x, g, i, c);
            std::size_t k = 0;
            for (; k + 4 <= g.hw; k += 4)
              for (std::size_t j = 0; j < 4; ++j) s.a[j] += p[k + j];
            for (; k < g.hw; ++k) s.a[0] += p[k];
          }
          // exact for one repeated value v: n * v needs at most 24 + 30 bits, and n * v / n is v again
          const double m = s.total() / static_cast<double>(g.count());
          Sum4 q;
          for (std::size_t i = 0; i < g.n; ++i) {
            const float* p = block(x, g, i, c);
            std::size_t k = 0;
            for (; k + 4 <= g.hw; k += 4)
              for (std::size_t j = 0; j < 4; ++j) {
                const double d = p[k + j] - m;
                q.a[j] += d * d;
              }
            for (; k < g.hw; ++k) q.a[0] += (p[k] - m) * (p[k] - m);
          }
          mean[c] = static_cast<float>(m);
          var[c] = static_cast<float>(q.total() / static_cast<double>(g.count()));
        }
      },
      channel_grain(g));
}

void batch_norm2d_apply(const float* x, const BatchNorm2dGeometry& g, const float* mean, const float* invstd,
                        const float* weight, const float* bias, float* y) {
  parallel_for(
      g.c,
      [&](std::size_t c0, std::size_t c1) {
        for (std::size_t c = c0; c < c1; ++c) {
          const float m = mean[c], scale = weight[c] * invstd[c], b = bias[c];
          for (std::size_t i = 0; i < g.n; ++i) {
            const float* p = block(x, g, i, c);
            float* q = block(y, g, i, c);
            // (x - m) * scale + b rather than x * scale + (b - m * scale): x == m gives exactly b
            for (std::size_t k = 0; k < g.hw; ++k) q[k] = (p[k] - m) * scale + b;
          }
        }
      },
      channel_grain(g));
}

void batch_norm2d_backward_kernel(const float* dy, const float* x, const BatchNorm2dGeometry& g,
                                  const float* mean, const float* invstd, const float* weight, bool training,
                                  float* dx, float* dweight, float* dbias) {
  parallel_for(
      g.c,
      [&](std::size_t c0, std::size_t c1) {
        for (std::size_t c = c0; c < c1; ++c) {
          const float m = mean[c];
          Sum4 sum_dy, sum_dy_xmu;  // sum(dy), sum(dy * (x - mean))
          for (std::size_t i = 0; i < g.n; ++i) {
            const float* d = block(dy, g, i, c);
            const float* p = block(x, g, i, c);
            std::size_t k = 0;
            for (; k + 4 <= g.hw; k += 4)
              for (std::size_t j = 0; j < 4; ++j) {
                sum_dy.a[j] += d[k + j];
                sum_dy_xmu.a[j] += static_cast<double>(d[k + j]) * (p[k + j] - m);
              }
            for (; k < g.hw; ++k) {
              sum_dy.a[0] += d[k];
              sum_dy_xmu.a[0] += static_cast<double>(d[k]) * (p[k] - m);
            }
          }
          const double s_dy = sum_dy.total(), s_dy_xmu = sum_dy_xmu.total(), is = invstd[c];
          dbias[c] = static_cast<float>(s_dy);
          dweight[c] = static_cast<float>(s_dy_xmu * is);
          const float scale = weight[c] * invstd[c];
          if (!training) {
            for (std::size_t i = 0; i < g.n; ++i) {
              const float* d = block(dy, g, i, c);
              float* o = block(dx, g, i, c);
              for (std::size_t k = 0; k < g.hw; ++k) o[k] = d[k] * scale;
            }
            continue;
          }
          // dy - mean(dy) - xhat * mean(dy * xhat), with xhat * mean(dy * xhat) = (x - m) * k
          const double count = static_cast<double>(g.count());
          const auto mean_dy = static_cast<float>(s_dy / count);
          const auto k_xmu = static_cast<float>(s_dy_xmu / count * is * is);
          for (std::size_t i = 0; i < g.n; ++i) {
            const float* d = block(dy, g, i, c);
            const float* p = block(x, g, i, c);
            float* o = block(dx, g, i, c);
            for (std::size_t k = 0; k < g.hw; ++k) o[k] = (d[k] - mean_dy - (p[k] - m) * k_xmu) * scale;
          }
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

void batch_norm2d_reference_apply(const float* x, const BatchNorm2dGeometry& g, const float* mean,
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
