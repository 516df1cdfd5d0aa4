// batch_norm2d (core/ops/normalization.hpp, kernels in core/kernels/batch_norm2d.hpp): PyTorch fixtures in
// train and eval mode with the running statistics, gradchecks, the lanes kernels against the reference, a
// constant channel, the tape, errors.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "fixture_runner.hpp"
#include "tapegrad.hpp"
#include "test_util.hpp"

using tg::Array;
using tg::Tensor;
using namespace test_util;

namespace {

tg::BatchNorm2dOptions options_of(const Json& c, const Tensor& running_mean, const Tensor& running_var) {
  const Json& o = c.at("options");
  return {.eps = o.at("eps").get<float>(),
          .momentum = o.at("momentum").get<float>(),
          .training = o.at("training").get<bool>(),
          .running_mean = running_mean,
          .running_var = running_var};
}

bool training_case(const Json& c) { return c.at("options").at("training").get<bool>(); }

// Runs the case's op on its running statistics and checks them after the call against PyTorch's.
Tensor run_case(const Inputs& t, const Json& c) {
  Tensor running_mean(array_of(c.at("running_mean"))), running_var(array_of(c.at("running_var")));
  Tensor y = tg::batch_norm2d(t[0], t[1], t[2], options_of(c, running_mean, running_var));
  check_close(running_mean.value(), c.at("running_mean_after"), "running_mean after");
  check_close(running_var.value(), c.at("running_var_after"), "running_var after");
  return y;
}

// Fast and reference kernels on the same random input, forward and backward, in both modes.
void check_kernels_agree(const tg::Shape& shape, std::uint64_t seed) {
  INFO("input ", tg::shape_str(shape));
  const tg::BatchNorm2dGeometry g{shape[0], shape[1], shape[2] * shape[3]};
  tg::Generator gen(seed);
  const Array x = tg::rand_uniform(shape, -2.f, 3.f, gen), dy = tg::rand_uniform(shape, -1.f, 1.f, gen);
  const Array w = tg::rand_uniform({g.c}, 0.5f, 1.5f, gen), b = tg::rand_uniform({g.c}, -1.f, 1.f, gen);
  std::vector<float> mean(g.c), var(g.c), ref_mean(g.c), ref_var(g.c), invstd(g.c);
  tg::batch_norm2d_lanes_stats(x.data(), g, mean.data(), var.data());
  tg::batch_norm2d_reference_stats(x.data(), g, ref_mean.data(), ref_var.data());
  for (std::size_t c = 0; c < g.c; ++c) {
    CHECK(mean[c] == doctest::Approx(ref_mean[c]).epsilon(1e-6));
    CHECK(var[c] == doctest::Approx(ref_var[c]).epsilon(1e-6));
    invstd[c] = 1.f / std::sqrt(var[c] + 1e-5f);
  }
  Array y = Array::from_shape(shape), ref_y = Array::from_shape(shape);
  tg::batch_norm2d_lanes_forward(x.data(), g, mean.data(), invstd.data(), w.data(), b.data(), y.data());
  tg::batch_norm2d_reference_forward(x.data(), g, mean.data(), invstd.data(), w.data(), b.data(),
                                     ref_y.data());
  CHECK(xt::allclose(y, ref_y, 1e-5, 1e-5));
  for (const bool training : {true, false}) {
    INFO("training ", training);
    Array dx = Array::from_shape(shape), ref_dx = Array::from_shape(shape);
    std::vector<float> dw(g.c), db(g.c), ref_dw(g.c), ref_db(g.c);
    tg::batch_norm2d_lanes_backward(dy.data(), x.data(), g, mean.data(), invstd.data(), w.data(), training,
                                    dx.data(), dw.data(), db.data());
    tg::batch_norm2d_reference_backward(dy.data(), x.data(), g, mean.data(), invstd.data(), w.data(),
                                        training, ref_dx.data(), ref_dw.data(), ref_db.data());
    CHECK(xt::allclose(dx, ref_dx, 1e-5, 1e-4));
    for (std::size_t c = 0; c < g.c; ++c) {
      CHECK(dw[c] == doctest::Approx(ref_dw[c]).epsilon(1e-5));
      CHECK(db[c] == doctest::Approx(ref_db[c]).epsilon(1e-5));
    }
  }
}

}  // namespace

// ---- PyTorch and gradcheck
// ---------------------------------------------------------------------------------

PYTORCH_TEST_CASE("batch_norm2d", "train mode: batch statistics, running statistics updated") {
  check_pytorch_cases(kBatchNorm, op, run_case, training_case, {"x", "weight", "bias"});
}

PYTORCH_TEST_CASE("batch_norm2d", "eval mode: running statistics, left unchanged") {
  check_pytorch_cases(kBatchNorm, op, run_case, [](const Json& c) { return !training_case(c); },
                      {"x", "weight", "bias"});
}

GRADCHECK_TEST_CASE("batch_norm2d", "in train mode, through the batch statistics") {
  // values spread over [-1, 1]: var ~ 1/3, far from eps, so the central differences are well conditioned
  check_gradients([](const Inputs& in) { return tg::batch_norm2d(in[0], in[1], in[2], {.training = true}); },
                  {param({3, 2, 2, 3}, 1), param({2}, 2, 0.5f, 1.5f), param({2}, 3)});
  check_gradients(
      [](const Inputs& in) {
        return tg::batch_norm2d(in[0], in[1], in[2], {.eps = 1e-2f, .training = true});
      },
      {param({1, 3, 2, 2}, 4), param({3}, 5, 0.5f, 1.5f), param({3}, 6)});
}

GRADCHECK_TEST_CASE("batch_norm2d", "in eval mode, with fixed running statistics") {
  const Tensor running_mean(Array{0.2f, -0.3f}), running_var(Array{0.8f, 1.7f});
  check_gradients(
      [&](const Inputs& in) {
        return tg::batch_norm2d(
            in[0], in[1], in[2],
            {.training = false, .running_mean = running_mean, .running_var = running_var});
      },
      {param({2, 2, 3, 2}, 7), param({2}, 8), param({2}, 9)});
}

// ---- kernels ----------------------------------------------------------------------------------------------

TEST_CASE("batch_norm2d kernels: the lanes ones agree with the reference") {
  check_kernels_agree({2, 3, 4, 5}, 1);
  check_kernels_agree({1, 2, 1, 3}, 2);  // blocks shorter than the 4-way unrolled loop
  check_kernels_agree({3, 5, 7, 7}, 3);
  {
    const ScopedNumThreads threads(2);  // several channels per thread, with enough values to split
    check_kernels_agree({8, 6, 32, 32}, 4);
  }
}

TEST_CASE("batch_norm2d: a channel of one repeated value has variance 0 and gives the bias") {
  const ClearTapeOnExit clear_tape;
  Array x = Array::from_shape({3, 2, 5, 3});
  tg::Generator gen(5);
  x = tg::rand_uniform({3, 2, 5, 3}, -1.f, 1.f, gen);
  xt::view(x, xt::all(), 1) = 0.1f;  // a value with no exact binary form
  std::vector<float> mean(2), var(2);
  tg::batch_norm2d_lanes_stats(x.data(), {3, 2, 15}, mean.data(), var.data());
  CHECK(mean[1] == 0.1f);
  CHECK(var[1] == 0.f);
  const Tensor y = tg::batch_norm2d(Tensor(x), Tensor(Array{1.5f, 2.f}), Tensor(Array{0.25f, -0.75f}), {});
  CHECK(xt::all(xt::equal(xt::view(y.value(), xt::all(), 1), -0.75f)));
}

// ---- running statistics and the tape
// -----------------------------------------------------------------------

TEST_CASE("batch_norm2d updates the running statistics in training only, off the tape") {
  const ClearTapeOnExit clear_tape;
  const Tensor x = param({2, 2, 2, 2}, 1), w(Array{1.f, 1.f}, true), b(Array{0.f, 0.f}, true);
  Tensor rm(Array{0.f, 0.f}), rv(Array{1.f, 1.f});
  const std::size_t before = tg::tape_size();
  tg::batch_norm2d(x, w, b, {.momentum = 0.5f, .running_mean = rm, .running_var = rv});
  CHECK(tg::tape_size() == before + 1);  // the op alone: the update is not recorded
  CHECK(!rm.requires_grad());
  const Array batch_mean = xt::mean(x.value(), {0, 2, 3});
  CHECK(xt::allclose(rm.value(), 0.5f * batch_mean));
  const std::vector<float> after_train = values_of(rm.value());
  tg::batch_norm2d(x, w, b, {.training = false, .running_mean = rm, .running_var = rv});
  CHECK(values_of(rm.value()) == after_train);
  {
    const tg::NoGradGuard no_grad;  // PyTorch updates the running statistics under no_grad too
    tg::batch_norm2d(x, w, b, {.momentum = 0.5f, .running_mean = rm, .running_var = rv});
  }
  CHECK(xt::allclose(rm.value(), 0.75f * batch_mean));
}

// ---- errors -----------------------------------------------------------------------------------------------

TEST_CASE("batch_norm2d rejects bad shapes, options and single values per channel in training") {
  const ClearTapeOnExit clear_tape;
  const Tensor w(Array{1.f, 1.f}), b(Array{0.f, 0.f}), rm(Array{0.f, 0.f}), rv(Array{1.f, 1.f});
  const tg::BatchNorm2dOptions with_stats{.running_mean = rm, .running_var = rv};
  CHECK_THROWS_WITH_AS(tg::batch_norm2d(param({2, 2, 3}, 1), w, b, with_stats),
                       "batch_norm2d: expected input [N, C, H, W], got [2, 2, 3]", tg::Error);
  CHECK_THROWS_WITH_AS(tg::batch_norm2d(param({2, 3, 2, 2}, 1), w, b, with_stats),
                       "batch_norm2d: expected weight [3] for input [2, 3, 2, 2], got [2]", tg::Error);
  CHECK_THROWS_WITH_AS(tg::batch_norm2d(param({1, 2, 1, 1}, 1), w, b, with_stats),
                       "batch_norm2d: Expected more than 1 value per channel when training, got input "
                       "[1, 2, 1, 1]",
                       tg::Error);
  CHECK(tg::batch_norm2d(param({1, 2, 1, 1}, 1), w, b,
                         {.training = false, .running_mean = rm, .running_var = rv})
            .shape() == tg::Shape{1, 2, 1, 1});
  CHECK_THROWS_WITH_AS(tg::batch_norm2d(param({2, 2, 2, 2}, 1), w, b, {.training = false}),
                       "batch_norm2d: expected running_mean [2] for input [2, 2, 2, 2], got none", tg::Error);
  CHECK_THROWS_AS(tg::batch_norm2d(param({2, 2, 2, 2}, 1), w, b, {.running_mean = rm}), tg::Error);
  CHECK_THROWS_AS(
      tg::batch_norm2d(param({2, 2, 2, 2}, 1), w, b, {.eps = 0.f, .running_mean = rm, .running_var = rv}),
      tg::Error);
  CHECK_THROWS_AS(tg::batch_norm2d(param({2, 2, 2, 2}, 1), w, b,
                                   {.momentum = 1.5f, .running_mean = rm, .running_var = rv}),
                  tg::Error);
  CHECK(values_of(rm.value()) == std::vector<float>{0.f, 0.f});  // no failed call touched it
}
