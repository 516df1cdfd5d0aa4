// custom_layer: a complete example of extending tapegrad (see custom_layer.hpp for the two layers).
// It checks the new op's gradient by finite differences, then trains a small Sequential that uses both
// layers on a toy problem (is a point inside the unit circle?) and shows the loss going down.
#include <cstdio>

#include "custom_layer.hpp"

int main() {
  // Verify the hand-written backward of silu against central differences.
  tg::manual_seed(0);
  tg::Tensor probe(tg::randn({4, 5}), true);
  const tg::GradcheckResult check =
      tg::gradcheck([](const std::vector<tg::Tensor>& in) { return example::silu(in[0]); }, {probe});
  std::printf("gradcheck silu: %s", check.report.c_str());
  if (!check.ok) return 1;

  // Points in [-1.5, 1.5]^2; class 1 inside the unit circle.
  const std::size_t n = 256;
  tg::Array points = tg::rand_uniform({n, 2}, -1.5f, 1.5f);
  std::vector<int> labels(n);
  for (std::size_t i = 0; i < n; ++i) {
    const float x = points(i, 0), y = points(i, 1);
    labels[i] = x * x + y * y < 1.f ? 1 : 0;
  }
  const tg::Tensor inputs(points);

  tg::Sequential model(tg::Linear(2, 16), example::PReLU(), tg::Linear(16, 16), example::SiLU(),
                       tg::Linear(16, 2));
  std::printf("%s", model.summary({n, 2}).c_str());
  tg::SGD opt(model.parameters(), {.lr = 0.1f, .momentum = 0.9f});
  for (int step = 0; step <= 200; ++step) {
    tg::Tensor loss = tg::cross_entropy(model(inputs), labels);
    opt.zero_grad();
    loss.backward();
    opt.step();
    if (step % 40 == 0) {
      std::printf("step %3d  loss %.4f  PReLU slope %.3f\n", step, loss.item(),
                  model.at<example::PReLU>(1).slope.value()(0));
    }
  }
  return 0;
}
