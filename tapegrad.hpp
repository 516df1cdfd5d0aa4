// tapegrad: the umbrella header. Everything public (docs/, README.md) is reachable from here.
#pragma once

// core/base: tg::Error and its message helpers, text helpers
#include "core/base/error.hpp"
#include "core/base/text.hpp"
// core/autograd: tensors, the tape, make_op, grad mode, gradcheck, the profile
#include "core/autograd/gradcheck.hpp"
#include "core/autograd/observer.hpp"
#include "core/autograd/profile.hpp"
#include "core/autograd/tape.hpp"
#include "core/autograd/tensor.hpp"
// core/ops: the differentiable ops, each with its named backward
#include "core/ops/ops.hpp"
// core/kernels: raw-buffer kernels (BLAS wrapper, conv, pooling) and their reference kernels
#include "core/kernels/batch_norm2d.hpp"
#include "core/kernels/blas.hpp"
#include "core/kernels/conv2d.hpp"
#include "core/kernels/max_pool2d.hpp"
// core/runtime: threads, memory reuse, the random generator
#include "core/runtime/memory.hpp"
#include "core/runtime/precision.hpp"
#include "core/runtime/random.hpp"
#include "core/runtime/threads.hpp"
// core/io: atomic writes, safetensors, npy
#include "core/io/atomic_file.hpp"
#include "core/io/npy.hpp"
#include "core/io/safetensors.hpp"
// core/distributed: MPI data parallelism (a world of one without MPI)
#include "core/distributed/distributed.hpp"
#include "core/xt.hpp"
// layers
#include "layers/activations.hpp"
#include "layers/batchnorm.hpp"
#include "layers/checkpoint.hpp"
#include "layers/conv2d.hpp"
#include "layers/fusion.hpp"
#include "layers/init.hpp"
#include "layers/int8.hpp"
#include "layers/linear.hpp"
#include "layers/model_file.hpp"
#include "layers/module.hpp"
#include "layers/pooling.hpp"
#include "layers/registry.hpp"
#include "layers/residual.hpp"
#include "layers/sequential.hpp"
// optim
#include "optim/adam.hpp"
#include "optim/optimizer.hpp"
#include "optim/schedule.hpp"
#include "optim/sgd.hpp"
// data
#include "data/augment.hpp"
#include "data/cifar10.hpp"
#include "data/dataloader.hpp"
#include "data/dataset.hpp"
#include "data/idx.hpp"
#include "data/image.hpp"
#include "data/image_folder.hpp"
#include "data/mnist.hpp"
