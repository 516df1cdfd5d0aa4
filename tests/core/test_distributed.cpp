// tg::distributed (core/distributed/) in a world of one: no Context, or a build without MPI. The
// multi-process tests are in tests/mpi/; DataLoader sharding is in tests/data/test_dataloader.cpp.
#include <doctest/doctest.h>

#include <vector>

#include "tapegrad.hpp"

TEST_CASE("tg::distributed outside a Context is a world of one: rank 0, and collectives change nothing") {
  CHECK(tg::distributed::rank() == 0);
  CHECK(tg::distributed::world_size() == 1);
  CHECK(tg::distributed::is_main());
  tg::Tensor w(tg::Array{{1.f, 2.f}, {3.f, 4.f}}, true);
  tg::Tensor b(tg::Array{0.5f}, true);
  tg::sum(w * w + b).backward();
  const tg::Array grad_w = w.grad(), grad_b = b.grad(), value_w = w.value();
  tg::distributed::allreduce_gradients({w, b}, 32);
  tg::distributed::broadcast_parameters({w, b});
  CHECK(w.grad() == grad_w);
  CHECK(b.grad() == grad_b);
  CHECK(w.value() == value_w);
  std::vector<double> sums = {1.5, 2.0};
  tg::distributed::allreduce_sum(sums);
  CHECK(sums == std::vector<double>{1.5, 2.0});
  tg::distributed::barrier();
}
