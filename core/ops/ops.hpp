// Every differentiable op, one header per family. Each op validates its inputs first and throws tg::Error
// naming the op and the shapes; each is a forward, a named backward (tg::<op>_backward, so `break
// tg::relu_backward` works) and one make_op line that records them.
#pragma once

#include "core/ops/conv2d.hpp"  // conv2d
#include "core/ops/elementwise.hpp"  // + - * / (tensor and float), neg, relu, sigmoid, tanh, exp, log, leaky_relu, dropout
#include "core/ops/fused.hpp"          // conv2d_fused: inference passes (no backward)
#include "core/ops/linear.hpp"         // matmul, linear
#include "core/ops/loss.hpp"           // log_softmax, softmax, cross_entropy, mse_loss
#include "core/ops/normalization.hpp"  // batch_norm2d
#include "core/ops/pooling.hpp"        // max_pool2d, avg_pool2d, global_avg_pool2d
#include "core/ops/shape.hpp"          // sum, mean, reshape, flatten
