// Softmax family and losses: log_softmax, softmax, cross_entropy, mse_loss.
#pragma once

#include <cstdint>
#include <vector>

#include "core/autograd/tape.hpp"

namespace tg {

// ---- softmax and losses (core/ops/loss.cpp) ------------------------------------------------------------
Tensor log_softmax(const Tensor& x);  // along the last axis
Tensor softmax(const Tensor& x);      // along the last axis
// logits [N, C], labels N ints in [0, C): mean over N of -log_softmax(logits)[i, labels[i]]
Tensor cross_entropy(const Tensor& logits, const std::vector<int>& labels);
// mean((pred - target)^2); shapes must be equal
Tensor mse_loss(const Tensor& pred, const Tensor& target);

}  // namespace tg
