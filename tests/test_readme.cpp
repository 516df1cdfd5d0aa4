// The README's "Write your own layer" code, verbatim, so the README cannot drift from what compiles and works.
#include <doctest/doctest.h>

#include "tapegrad.hpp"

namespace readme {
// (1) composed from ops, with a learnable parameter: no backward code
class PReLU : public tg::Module {
 public:
  explicit PReLU(float initial_slope = 0.25f) : slope(tg::Array(tg::Shape{1}, initial_slope)) {
    register_parameter("weight", slope);
  }
  tg::Tensor forward(const tg::Tensor& x) override { return tg::relu(x) - slope * tg::relu(-x); }
  tg::Tensor slope;
};

// (2) a primitive op: forward value, inputs, and the backward from d(out) to d(input)
tg::Tensor silu(const tg::Tensor& x) {
  tg::Array y = x.value() / (1.f + xt::exp(-x.value()));
  return tg::make_op("silu", std::move(y), {x}, [x](const tg::Array& dout) {
    tg::Array s = 1.f / (1.f + xt::exp(-x.value()));
    return std::vector<tg::Array>{dout * (s + x.value() * s * (1.f - s))};
  });
}
class SiLU : public tg::Module {
 public:
  tg::Tensor forward(const tg::Tensor& x) override { return silu(x); }
};
}  // namespace readme

TEST_CASE("README: the custom layers compile, pass gradcheck and train in a Sequential") {
  using namespace readme;
  tg::manual_seed(0);
  tg::Tensor probe(tg::randn({3, 4}), true);
  auto check = tg::gradcheck([](const std::vector<tg::Tensor>& in) { return silu(in[0]); }, {probe});  // check.ok
  INFO(check.report);
  CHECK(check.ok);
  tg::Sequential model(tg::Linear(2, 16), PReLU(), tg::Linear(16, 16), SiLU(), tg::Linear(16, 2));
  CHECK(model.named_parameters()[2].first == "1.weight");
  tg::Tensor x(tg::randn({32, 2}));
  std::vector<int> labels(32);
  for (std::size_t i = 0; i < 32; ++i) labels[i] = x.value()(i, 0) > 0.f;
  tg::SGD opt(model.parameters(), {.lr = 0.1f, .momentum = 0.9f});
  float first = 0.f, last = 0.f;
  for (int step = 0; step < 50; ++step) {
    tg::Tensor loss = tg::cross_entropy(model(x), labels);
    (step == 0 ? first : last) = loss.item();
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  CHECK(last < 0.5f * first);
}
