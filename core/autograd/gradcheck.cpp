#include "core/autograd/gradcheck.hpp"

#include <cmath>
#include <sstream>

#include "core/autograd/tape.hpp"
#include "core/base/error.hpp"
#include "core/runtime/random.hpp"

namespace tg {
namespace {

// The scalar that both gradients are taken of: out itself, or sum(out * w) for a fixed w.
struct Projection {
  Array weights;  // empty (0-d) when out is already a scalar

  explicit Projection(const Shape& out_shape) {
    std::size_t n = 1;
    for (auto d : out_shape) n *= d;
    if (n != 1) {
      Generator gen(1234);
      weights = rand_uniform(out_shape, 0.5f, 1.5f, gen);
      for (float& w : weights) w = gen.uniform() < 0.5f ? -w : w;
    }
  }
  bool identity() const { return weights.dimension() == 0; }
  // sum(out * w) as one op of its own (autograd does not depend on ops): d/d(out) = w * d(sum).
  Tensor apply(const Tensor& out) const {
    if (identity()) return out;
    return make_op("gradcheck_projection", Array(static_cast<float>(value(out))), {out},
                   [w = weights](const Array& dsum) { return std::vector<Array>{Array(w * dsum())}; });
  }
  double value(const Tensor& out) const { return value(out.value()); }
  double value(const Array& out) const {  // in double, to keep rounding out of the difference
    if (identity()) return out.data()[0];
    double s = 0.0;
    for (std::size_t i = 0; i < out.size(); ++i) s += static_cast<double>(out.data()[i]) * weights.data()[i];
    return s;
  }
};

}  // namespace

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& options) {
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined() || !inputs[i].requires_grad()) {
      fail("gradcheck: input ", i, " must be a defined tensor with requires_grad = true");
    }
  }
  std::vector<Array> saved_grads;
  for (const Tensor& t : inputs) saved_grads.push_back(t.node()->grad);

  // analytic: one backward through the tape
  Tensor out = f(inputs);
  const Projection projection(out.shape());
  for (Tensor t : inputs) t.zero_grad();
  projection.apply(out).backward();
  std::vector<Array> analytic;
  for (const Tensor& t : inputs) analytic.push_back(t.grad());

  GradcheckResult result;
  result.ok = true;
  std::ostringstream report;
  NoGradGuard no_grad;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    Tensor x = inputs[i];
    float* v = x.value().data();
    float input_max_err = 0.f;
    std::size_t worst = 0, failures = 0;
    float worst_analytic = 0.f, worst_numeric = 0.f;
    for (std::size_t j = 0; j < x.numel(); ++j) {
      const float original = v[j];
      v[j] = original + options.eps;
      const double plus = projection.value(f(inputs));
      v[j] = original - options.eps;
      const double minus = projection.value(f(inputs));
      v[j] = original;
      const auto numeric = static_cast<float>((plus - minus) / (2.0 * options.eps));
      const float a = analytic[i].data()[j];
      const float err = std::abs(a - numeric);
      if (a != 0.f) result.nonzero = true;
      if (!(err <= options.atol + options.rtol * std::abs(numeric))) ++failures;  // NaN fails too
      if (!(err <= input_max_err)) {
        input_max_err = err;
        worst = j;
        worst_analytic = a;
        worst_numeric = numeric;
      }
    }
    if (failures > 0) result.ok = false;
    result.max_abs_error = std::max(result.max_abs_error, input_max_err);
    report << "input " << i << ' ' << shape_str(x.shape()) << ": " << (failures ? "FAIL" : "ok")
           << ", max |analytic - numeric| = " << input_max_err << " at flat index " << worst << " (analytic "
           << worst_analytic << ", numeric " << worst_numeric << ")";
    if (failures) report << ", " << failures << " of " << x.numel() << " elements out of tolerance";
    report << '\n';
  }
  result.report = report.str();
  for (std::size_t i = 0; i < inputs.size(); ++i) inputs[i].node()->grad = saved_grads[i];
  return result;
}

}  // namespace tg
