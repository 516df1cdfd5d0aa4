// The core of the public API (tensors, the tape, ops, make_op, gradcheck) as user code, results checked.
#include <doctest/doctest.h>

#include "tapegrad.hpp"
#include "test_util.hpp"
using tg::Array;  // = xt::xarray<float>

namespace {
// ---- core: extending with a new primitive op (as in API.md) ----
tg::Tensor square(const tg::Tensor& t) {
  return tg::make_op("square", t.value() * t.value(), {t},
                     [t](const Array& dout) { return std::vector<Array>{2.f * t.value() * dout}; });
}
}  // namespace

TEST_CASE("API.md core snippet: tensors, tape, grad mode") {
  // The snippet seeds the generator and sets the thread count: both come back at the end of the test.
  const test_util::ScopedSeed restore_generator(42);
  const test_util::ScopedNumThreads restore_threads(tg::num_threads());
  tg::Tensor x(Array{{1.f, 2.f}, {3.f, 4.f}}, /*requires_grad=*/true);
  const Array& v = x.value();
  CHECK(v(1, 0) == 3.f);
  CHECK(x.shape().size() == 2);
  CHECK(x.shape()[0] == 2);
  tg::Tensor y = tg::sum(x * x + 1.f);
  y.backward();
  const Array& g = x.grad();
  CHECK(g == 2.f * x.value());
  x.zero_grad();
  CHECK(x.grad() == xt::zeros<float>({2, 2}));
  float f = y.item();
  CHECK(f == 34.f);
  tg::Tensor d = x.detach();
  CHECK_FALSE(d.requires_grad());
  {
    tg::NoGradGuard no_grad;
    CHECK_FALSE(tg::grad_enabled());
  }
  bool on = tg::grad_enabled();
  CHECK(on);
  tg::manual_seed(42);
  tg::set_num_threads(2);
  int n = tg::num_threads();
  CHECK(n == 2);
}

TEST_CASE("API.md core snippet: ops") {
  tg::Tensor a(Array{{1.f, 2.f, 3.f}, {4.f, 5.f, 6.f}}, true);
  tg::Tensor b(Array{{1.f, 0.f}, {0.f, 1.f}, {1.f, 1.f}}, true);
  CHECK(tg::matmul(a, b).value() == Array{{4.f, 5.f}, {10.f, 11.f}});
  tg::Tensor x(Array{{-1.f, 0.5f}, {2.f, -3.f}}, true);
  CHECK(tg::relu(x).value() == Array{{0.f, 0.5f}, {2.f, 0.f}});
  CHECK(tg::sigmoid(x).value()(0, 0) == doctest::Approx(0.268941));
  CHECK(tg::tanh(x).value()(1, 0) == doctest::Approx(0.964028));
  CHECK(tg::exp(x).value()(0, 1) == doctest::Approx(1.648721));
  CHECK(tg::log(tg::exp(x)).value()(1, 1) == doctest::Approx(-3.0));
  CHECK(tg::sum(x).item() == -1.5f);
  CHECK(tg::mean(x).item() == -0.375f);
  tg::Tensor r = tg::reshape(a, {-1, 2});  // one -1 allowed
  CHECK(r.shape() == tg::Shape{3, 2});
  tg::Tensor images(xt::zeros<float>({4, 1, 2, 3}));
  CHECK(tg::flatten(images).shape() == tg::Shape{4, 6});
  tg::Tensor w(Array{{1.f, 1.f, 1.f}}, true);
  const Array with_bias = tg::linear(a, w, tg::Tensor(Array(tg::Shape{1}, 0.5f))).value();
  const Array without_bias = tg::linear(a, w, tg::Tensor{}).value();  // no bias
  CHECK(with_bias.shape() == tg::Shape{2, 1});
  CHECK(with_bias(0, 0) == 6.5f);
  CHECK(with_bias(1, 0) == 15.5f);
  CHECK(without_bias(1, 0) == 15.f);
  CHECK(xt::sum(tg::softmax(x).value())() == doctest::Approx(2.0));
  CHECK(tg::log_softmax(x).value()(0, 1) == doctest::Approx(-0.201413));
  tg::Tensor logits(Array{{2.f, 0.f}, {0.f, 2.f}}, true);
  CHECK(tg::cross_entropy(logits, {0, 1}).item() == doctest::Approx(0.126928));
  CHECK(tg::mse_loss(x, tg::Tensor(xt::zeros<float>({2, 2}))).item() ==
        doctest::Approx((1 + 0.25 + 4 + 9) / 4.0));
  CHECK((2.f - x).value()(0, 0) == 3.f);
  CHECK((-x).value()(1, 1) == 3.f);
  CHECK((x / 2.f).value()(1, 0) == 1.f);
  tg::clear_tape();
}

TEST_CASE("API.md core snippet: a new primitive op verified by gradcheck") {
  tg::Tensor x(Array{{1.f, 2.f}, {3.f, 4.f}}, true);
  tg::GradcheckResult r =
      tg::gradcheck([](const std::vector<tg::Tensor>& in) { return tg::sum(square(in[0])); }, {x});
  bool ok = r.ok;
  float err = r.max_abs_error;
  CHECK(ok);
  CHECK(err < 1e-2f);
  CHECK(r.nonzero);
  CHECK(r.report.find("input 0 [2, 2]: ok") != std::string::npos);
}
