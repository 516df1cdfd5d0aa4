// tapegrad: the umbrella header. Everything in ../shared/API.md is reachable from here.
#pragma once

// core: tensors, the tape, ops, gradcheck
#include "core/conv.hpp"
#include "core/distributed.hpp"
#include "core/error.hpp"
#include "core/gradcheck.hpp"
#include "core/io.hpp"
#include "core/memory.hpp"
#include "core/ops.hpp"
#include "core/pool.hpp"
#include "core/profile.hpp"
#include "core/random.hpp"
#include "core/safetensors.hpp"
#include "core/tape.hpp"
#include "core/tensor.hpp"
#include "core/threads.hpp"
#include "core/xt.hpp"
// layers
#include "layers/activations.hpp"
#include "layers/checkpoint.hpp"
#include "layers/conv2d.hpp"
#include "layers/init.hpp"
#include "layers/linear.hpp"
#include "layers/module.hpp"
#include "layers/pooling.hpp"
#include "layers/sequential.hpp"
// optim
#include "optim/optimizer.hpp"
#include "optim/schedule.hpp"
#include "optim/sgd.hpp"
// data
#include "data/dataloader.hpp"
#include "data/idx.hpp"
#include "data/image.hpp"
#include "data/mnist.hpp"
