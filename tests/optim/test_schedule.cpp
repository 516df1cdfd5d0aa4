// Learning-rate schedules (optim/schedule.hpp): StepLR and CosineLR (with warm-up) follow their formulas.
#include <doctest/doctest.h>

#include "tapegrad.hpp"

using tg::Array;
using tg::Tensor;

TEST_CASE("StepLR multiplies the learning rate by gamma every step_size steps") {
  Tensor w(Array{1.f}, true);
  tg::SGD opt({w}, {.lr = 0.1f});
  tg::StepLR step(opt, 2, 0.5f);
  step.step();
  CHECK(opt.lr() == doctest::Approx(0.1f));
  step.step();
  CHECK(opt.lr() == doctest::Approx(0.05f));
}

TEST_CASE("CosineLR with warm-up already warms up on its first step: base / warm-up steps") {
  Tensor w(Array{1.f}, true);
  tg::SGD opt({w}, {.lr = 0.2f});
  tg::CosineLR warm(opt, 10, 0.f, 4);
  CHECK(opt.lr() == doctest::Approx(0.05f));
}

TEST_CASE("CosineLR is half the base rate half way and the minimum at the end") {
  Tensor w(Array{1.f}, true);
  tg::SGD opt({w}, {.lr = 0.2f});
  tg::CosineLR cosine(opt, 10, 0.f);
  cosine.set_step(5);
  CHECK(opt.lr() == doctest::Approx(0.1f));
  cosine.set_step(10);
  CHECK(opt.lr() == doctest::Approx(0.f));
}
