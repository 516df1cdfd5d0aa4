// log_softmax, softmax and cross_entropy on logits far from 0 (1e4, 1e7, 1e16): the log-probabilities,
// probabilities and gradients are O(1) and must match PyTorch to ~1e-6, however large the logits.
//
// Expected values are PyTorch 1.13, float32 (torch.nn.functional.log_softmax / softmax / cross_entropy and
// their autograd gradients), printed as float32 and written here as literals; see each test's comment.
#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <vector>

#include "tapegrad.hpp"

namespace {

using tg::Array;

// Every element of `got` (row-major) within `tol` of `want`, reporting the first mismatches by index.
void check_near(const Array& got, const std::vector<float>& want, float tol = 1e-6f) {
  REQUIRE(got.size() == want.size());
  std::size_t i = 0;
  for (const float g : got) {
    INFO("element ", i, ": tapegrad ", g, ", PyTorch ", want[i]);
    CHECK(std::fabs(g - want[i]) <= tol);
    ++i;
  }
}

}  // namespace

TEST_CASE("log_softmax of two equal logits 1e7 is log(1/2) = -0.693147 (the old formula gave -1)") {
  // torch: F.log_softmax(torch.tensor([1e7, 1e7]), -1) -> [-0.6931471824645996, -0.6931471824645996]
  const tg::Tensor x(Array{1e7f, 1e7f});
  check_near(tg::log_softmax(x).value(), {-0.6931471824645996f, -0.6931471824645996f});
}

TEST_CASE("log_softmax of logits near 1e4 is accurate to 1e-6, not to the float spacing 1e-3 near 1e4") {
  // torch: F.log_softmax(torch.tensor([10000.5, 9999.75, 10000.0]), -1)
  //   -> [-0.7318375706672668, -1.481837511062622, -1.231837511062622]
  const tg::Tensor x(Array{10000.5f, 9999.75f, 10000.f});
  check_near(tg::log_softmax(x).value(), {-0.7318375706672668f, -1.481837511062622f, -1.231837511062622f});
}

TEST_CASE("softmax of four equal logits 1e16 is 1/4 each, not 1") {
  // torch: F.softmax(torch.tensor([1e16] * 4), -1) -> [0.25, 0.25, 0.25, 0.25]
  const tg::Tensor x(Array{1e16f, 1e16f, 1e16f, 1e16f});
  check_near(tg::softmax(x).value(), {0.25f, 0.25f, 0.25f, 0.25f});
}

TEST_CASE("log_softmax gradient at logits 1e7 uses the true softmax") {
  // torch: x = [[1e7, 1e7 + 1]] (requires grad), y = F.log_softmax(x, -1), (y * [[1, -2]]).sum().backward()
  //   y -> [-1.31326162815094, -0.31326165795326233], x.grad -> [1.2689414024353027, -1.2689414024353027]
  const tg::Tensor x(Array{{1e7f, 1e7f + 1.f}}, true);
  const tg::Tensor y = tg::log_softmax(x);
  check_near(y.value(), {-1.31326162815094f, -0.31326165795326233f});
  tg::sum(y * tg::Tensor(Array{{1.f, -2.f}})).backward();
  check_near(x.grad(), {1.2689414024353027f, -1.2689414024353027f});
}

TEST_CASE("cross_entropy of logits at +-1e7 matches PyTorch, loss and gradient") {
  // torch: x = [[1e7, 1e7 + 1, 1e7 + 2], [-1e7 + 2, -1e7, -1e7 + 1]], labels [1, 0]
  //   F.cross_entropy(x, labels) -> 0.9076059460639954
  //   x.grad -> [0.04501529037952423, -0.37763574719429016, 0.3326205015182495,
  //              -0.16737955808639526, 0.045015279203653336, 0.12236423045396805]
  const tg::Tensor x(Array{{1e7f, 1e7f + 1.f, 1e7f + 2.f}, {-1e7f + 2.f, -1e7f, -1e7f + 1.f}}, true);
  const tg::Tensor loss = tg::cross_entropy(x, {1, 0});
  check_near(loss.value(), {0.9076059460639954f});
  loss.backward();
  check_near(x.grad(), {0.04501529037952423f, -0.37763574719429016f, 0.3326205015182495f,
                        -0.16737955808639526f, 0.045015279203653336f, 0.12236423045396805f});
}

TEST_CASE("cross_entropy of two equal logits 1e16 is log 2 with gradient [-1/2, 1/2]") {
  // torch: x = [[1e16, 1e16]], F.cross_entropy(x, [0]) -> 0.6931471824645996, x.grad -> [-0.5, 0.5]
  const tg::Tensor x(Array{{1e16f, 1e16f}}, true);
  const tg::Tensor loss = tg::cross_entropy(x, {0});
  check_near(loss.value(), {0.6931471824645996f});
  loss.backward();
  check_near(x.grad(), {-0.5f, 0.5f});
}

TEST_CASE("mse_loss_backward gives no_gradient() for an input that does not require grad") {
  const tg::Tensor pred(Array{1.f, 2.f}, true), target(Array{0.f, 4.f}, false);
  const Array diff{1.f, -2.f};
  const std::vector<Array> grads = tg::mse_loss_backward(Array(1.f), diff, pred, target);
  REQUIRE(grads.size() == 2);
  check_near(grads[0], {1.f, -2.f});  // 2 * diff / n with n = 2
  CHECK(grads[1].size() == 0);
}
