// Linear (fully connected): y = x W^T + b, x [N, in], W [out, in], b [out], as nn.Linear.
#pragma once

#include "layers/module.hpp"

namespace tg {

class Linear : public Module {
 public:
  Linear(std::size_t in_features, std::size_t out_features, bool bias = true);
  Tensor forward(const Tensor& x) override;
  std::string describe() const override;
  Shape output_shape(const Shape& input) const override;  // [in] -> [out]
  std::string to_line() const override;                   // linear OUT [bias=true|false]

  Tensor weight;  // [out, in]
  Tensor bias;    // [out], or undefined
  std::size_t in_features, out_features;
};

}  // namespace tg
