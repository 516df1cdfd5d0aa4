#include "layers/activations.hpp"

#include <sstream>

#include "core/autograd/error.hpp"
#include "core/ops/ops.hpp"

namespace tg {

Tensor ReLU::forward(const Tensor& x) { return relu(x); }
Tensor LeakyReLU::forward(const Tensor& x) { return leaky_relu(x, negative_slope); }
Tensor Sigmoid::forward(const Tensor& x) { return sigmoid(x); }
Tensor Tanh::forward(const Tensor& x) { return tanh(x); }
Tensor Softmax::forward(const Tensor& x) { return softmax(x); }
Tensor LogSoftmax::forward(const Tensor& x) { return log_softmax(x); }
Tensor Flatten::forward(const Tensor& x) { return flatten(x); }

std::string LeakyReLU::describe() const {
  std::ostringstream s;
  s << "LeakyReLU(" << negative_slope << ")";
  return s.str();
}

Dropout::Dropout(float p) : p(p) {
  if (!(p >= 0.f && p < 1.f)) fail("Dropout: p must be in [0, 1), got ", p);
}

Tensor Dropout::forward(const Tensor& x) {
  if (!is_training() || p == 0.f) return x;
  return dropout(x, p, default_generator());
}

std::string Dropout::describe() const {
  std::ostringstream s;
  s << "Dropout(" << p << ")";
  return s.str();
}

}  // namespace tg
