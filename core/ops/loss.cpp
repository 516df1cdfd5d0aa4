// Softmax family and losses. Rows are the last axis; every kernel subtracts the row max first and forms
// log-probabilities as (x - max) - log(sum), never as x - (max + log(sum)): max + log(sum) rounds to the
// spacing of floats near max (1e-3 at 1e4, 1 at 1e7, 1e9 at 1e16), which would wipe out the O(1) result.
#include "core/ops/loss.hpp"

#include <algorithm>
#include <cmath>

#include "core/base/error.hpp"

namespace tg {
namespace {

// Splits x into rows along its last axis: rows x cols.
void rows_cols(const Array& x, const char* op, std::size_t& rows, std::size_t& cols) {
  if (x.dimension() < 1) fail(op, ": expected at least 1 dimension, got a 0-d tensor");
  cols = x.shape().back();
  if (cols == 0) fail(op, ": the last axis is empty, shape ", shape_str(x.shape()));
  rows = x.size() / cols;
}

// x [rows, cols] -> out[r, :] = (x[r, :] - max) - log(sum_c exp(x[r, c] - max)), the sum in double.
Array log_softmax_rows(const Array& x, std::size_t rows, std::size_t cols) {
  Array out = Array::from_shape(x.shape());
  for (std::size_t r = 0; r < rows; ++r) {
    const float* in = x.data() + r * cols;
    float* o = out.data() + r * cols;
    float max = in[0];
    for (std::size_t c = 1; c < cols; ++c) max = std::max(max, in[c]);
    double sum_exp = 0.0;
    for (std::size_t c = 0; c < cols; ++c) {
      o[c] = in[c] - max;  // exact for floats within a factor 2 of max (Sterbenz); <= 0 always
      sum_exp += std::exp(o[c]);
    }
    const float log_sum = static_cast<float>(std::log(sum_exp));  // in [0, log(cols)]
    for (std::size_t c = 0; c < cols; ++c) o[c] -= log_sum;
  }
  return out;
}

// x [rows, cols] -> out[r, :] = exp(x[r, :] - max) / sum_c exp(x[r, c] - max), the sum in double.
Array softmax_rows(const Array& x, std::size_t rows, std::size_t cols) {
  Array out = Array::from_shape(x.shape());
  for (std::size_t r = 0; r < rows; ++r) {
    const float* in = x.data() + r * cols;
    float* o = out.data() + r * cols;
    float max = in[0];
    for (std::size_t c = 1; c < cols; ++c) max = std::max(max, in[c]);
    double sum_exp = 0.0;
    for (std::size_t c = 0; c < cols; ++c) {
      o[c] = std::exp(in[c] - max);
      sum_exp += o[c];
    }
    const float inv_sum = static_cast<float>(1.0 / sum_exp);  // sum_exp >= 1: the max contributes exp(0)
    for (std::size_t c = 0; c < cols; ++c) o[c] *= inv_sum;
  }
  return out;
}

}  // namespace

// ---- log_softmax ------------------------------------------------------------------------------------------

Tensor log_softmax(const Tensor& x) {
  std::size_t rows = 0, cols = 0;
  rows_cols(x.value(), "log_softmax", rows, cols);
  return make_op(
      "log_softmax", log_softmax_rows(x.value(), rows, cols), {x},
      [rows, cols](const Array& dy, const Array& y) { return log_softmax_backward(dy, y, rows, cols); });
}

// dx = dy - softmax(x) * sum(dy) per row, with softmax = exp(y): y is O(1)-accurate (see log_softmax_rows),
// so exp(y) is within ~1e-7 of softmax, as close as recomputing exp(x - max) / sum (and what PyTorch does).
std::vector<Array> log_softmax_backward(const Array& dy, const Array& y, std::size_t rows, std::size_t cols) {
  Array dx = Array::from_shape(y.shape());
  for (std::size_t r = 0; r < rows; ++r) {
    const float* g = dy.data() + r * cols;
    const float* yr = y.data() + r * cols;
    float* d = dx.data() + r * cols;
    double sum_g = 0.0;
    for (std::size_t c = 0; c < cols; ++c) sum_g += g[c];
    for (std::size_t c = 0; c < cols; ++c) d[c] = g[c] - std::exp(yr[c]) * static_cast<float>(sum_g);
  }
  return gradients(std::move(dx));
}

// ---- softmax ----------------------------------------------------------------------------------------------

Tensor softmax(const Tensor& x) {
  std::size_t rows = 0, cols = 0;
  rows_cols(x.value(), "softmax", rows, cols);
  return make_op(
      "softmax", softmax_rows(x.value(), rows, cols), {x},
      [rows, cols](const Array& dy, const Array& y) { return softmax_backward(dy, y, rows, cols); });
}

// dx = y * (dy - sum(dy * y)) per row (the Jacobian diag(y) - y y^T applied to dy)
std::vector<Array> softmax_backward(const Array& dy, const Array& y, std::size_t rows, std::size_t cols) {
  Array dx = Array::from_shape(y.shape());
  for (std::size_t r = 0; r < rows; ++r) {
    const float* g = dy.data() + r * cols;
    const float* yr = y.data() + r * cols;
    float* d = dx.data() + r * cols;
    double dot = 0.0;
    for (std::size_t c = 0; c < cols; ++c) dot += g[c] * yr[c];
    for (std::size_t c = 0; c < cols; ++c) d[c] = yr[c] * (g[c] - static_cast<float>(dot));
  }
  return gradients(std::move(dx));
}

// ---- cross_entropy ----------------------------------------------------------------------------------------

Tensor cross_entropy(const Tensor& logits, const std::vector<int>& labels) {
  if (logits.dim() != 2) fail("cross_entropy: expected logits [N, C], got ", shape_str(logits.shape()));
  const std::size_t n = logits.shape()[0], c = logits.shape()[1];
  if (labels.size() != n) {
    fail("cross_entropy: expected ", n, " labels for logits ", shape_str(logits.shape()), ", got ",
         labels.size());
  }
  if (n == 0 || c == 0) fail("cross_entropy: logits are empty, shape ", shape_str(logits.shape()));
  for (std::size_t i = 0; i < n; ++i) {
    if (labels[i] < 0 || static_cast<std::size_t>(labels[i]) >= c) {
      fail("cross_entropy: label ", i, " is ", labels[i], ", expected a class in [0, ", c, ")");
    }
  }
  // Fused: keep log-probabilities (stable) for the backward, never form probabilities of -inf logs.
  Array log_probs = log_softmax_rows(logits.value(), n, c);
  double total = 0.0;
  for (std::size_t i = 0; i < n; ++i) total -= log_probs.data()[i * c + static_cast<std::size_t>(labels[i])];
  Array loss = Array::from_shape({});
  loss() = static_cast<float>(total / static_cast<double>(n));
  return make_op("cross_entropy", std::move(loss), {logits},
                 [log_probs = std::move(log_probs), labels](const Array& dloss) {
                   return cross_entropy_backward(dloss, log_probs, labels);
                 });
}

// dlogits[i, j] = (exp(log_probs[i, j]) - [j == label_i]) * dloss / N
std::vector<Array> cross_entropy_backward(const Array& dloss, const Array& log_probs,
                                          const std::vector<int>& labels) {
  const std::size_t n = log_probs.shape()[0], c = log_probs.shape()[1];
  Array dz = Array::from_shape(log_probs.shape());
  const float scale = dloss.data()[0] / static_cast<float>(n);
  for (std::size_t i = 0; i < n; ++i) {
    const float* lp = log_probs.data() + i * c;
    float* d = dz.data() + i * c;
    for (std::size_t j = 0; j < c; ++j) d[j] = std::exp(lp[j]) * scale;
    d[labels[i]] -= scale;
  }
  return gradients(std::move(dz));
}

// ---- mse_loss ---------------------------------------------------------------------------------------------

Tensor mse_loss(const Tensor& pred, const Tensor& target) {
  if (pred.shape() != target.shape()) {
    fail("mse_loss: pred and target shapes differ: ", shape_str(pred.shape()), " vs ",
         shape_str(target.shape()));
  }
  const std::size_t n = pred.numel();
  if (n == 0) fail("mse_loss: inputs are empty, shape ", shape_str(pred.shape()));
  Array diff = pred.value() - target.value();
  double total = 0.0;
  for (float d : diff) total += static_cast<double>(d) * d;
  Array loss = Array::from_shape({});
  loss() = static_cast<float>(total / static_cast<double>(n));
  return make_op("mse_loss", std::move(loss), {pred, target},
                 [diff = std::move(diff), pred, target](const Array& dloss) {
                   return mse_loss_backward(dloss, diff, pred, target);
                 });
}

// dpred = 2 (pred - target) / n * dloss ; dtarget = -dpred
std::vector<Array> mse_loss_backward(const Array& dloss, const Array& diff, const Tensor& pred,
                                     const Tensor& target) {
  const std::size_t n = diff.size();
  const float scale = 2.f * dloss.data()[0] / static_cast<float>(n);
  Array dpred = no_gradient(), dtarget = no_gradient();
  if (pred.requires_grad()) {
    dpred = Array::from_shape(diff.shape());
    for (std::size_t k = 0; k < n; ++k) dpred.data()[k] = diff.data()[k] * scale;
  }
  if (target.requires_grad()) {
    dtarget = Array::from_shape(diff.shape());
    for (std::size_t k = 0; k < n; ++k) dtarget.data()[k] = diff.data()[k] * -scale;
  }
  return gradients(std::move(dpred), std::move(dtarget));
}

}  // namespace tg
