// Softmax family and losses: log_softmax, softmax, cross_entropy, mse_loss. Each op is a forward, a named
// backward (one gradient per input, in input order; no_gradient() for an input that needs none) and the line
// that records them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/autograd/tape.hpp"

namespace tg {

// ---- softmax and losses (core/ops/loss.cpp) ------------------------------------------------------------
// Rows are the last axis. Every row is shifted by its max before exp, and log-probabilities are formed as
// (x - max) - log(sum exp(x - max)), so logits of any magnitude (1e4, 1e7, 1e16) give O(1)-accurate results.

// y = log_softmax(x) along the last axis; x has at least 1 dimension and a non-empty last axis.
Tensor log_softmax(const Tensor& x);
// dy, y [rows, cols] (y the output of log_softmax) -> {dx}: dx = dy - exp(y) * sum(dy) per row.
std::vector<Array> log_softmax_backward(const Array& dy, const Array& y, std::size_t rows, std::size_t cols);

// y = softmax(x) along the last axis; x has at least 1 dimension and a non-empty last axis.
Tensor softmax(const Tensor& x);
// dy, y [rows, cols] (y the output of softmax) -> {dx}: dx = y * (dy - sum(dy * y)) per row.
std::vector<Array> softmax_backward(const Array& dy, const Array& y, std::size_t rows, std::size_t cols);

// logits [N, C], labels N ints in [0, C): mean over N of -log_softmax(logits)[i, labels[i]]
Tensor cross_entropy(const Tensor& logits, const std::vector<int>& labels);
// dloss (0-d), log_probs = log_softmax(logits) [N, C] -> {dlogits}: (softmax - onehot(labels)) * dloss / N.
std::vector<Array> cross_entropy_backward(const Array& dloss, const Array& log_probs,
                                          const std::vector<int>& labels);

// mean((pred - target)^2); shapes must be equal
Tensor mse_loss(const Tensor& pred, const Tensor& target);
// dloss (0-d), diff = pred - target [same shape] -> {dpred, dtarget}: +-2 * diff * dloss / n, no_gradient()
// for an input that does not require grad.
std::vector<Array> mse_loss_backward(const Array& dloss, const Array& diff, const Tensor& pred,
                                     const Tensor& target);

}  // namespace tg
