// Module (layers/module.hpp): registered parameters under PyTorch state_dict keys.
#include <doctest/doctest.h>

#include <cmath>
#include <sstream>

#include "tapegrad.hpp"
#include "test_util.hpp"

using tg::Array;
using tg::Tensor;

namespace {

tg::Sequential lenet() {
  return tg::Sequential(tg::Conv2D(1, 6, 5, {.padding = {2, 2}}), tg::ReLU(), tg::MaxPool2D(2),
                        tg::Conv2D(6, 16, 5), tg::ReLU(), tg::MaxPool2D(2), tg::Flatten(),
                        tg::Linear(400, 120), tg::ReLU(), tg::Linear(120, 84), tg::ReLU(),
                        tg::Linear(84, 10));
}

}  // namespace

TEST_CASE("named_parameters uses PyTorch nn.Sequential state_dict keys") {
  tg::Sequential model = lenet();
  std::vector<std::string> keys;
  for (auto& [name, p] : model.named_parameters()) keys.push_back(name);
  CHECK(keys == std::vector<std::string>{"0.weight", "0.bias", "3.weight", "3.bias", "7.weight", "7.bias",
                                         "9.weight", "9.bias", "11.weight", "11.bias"});
  CHECK(model.parameters().size() == 10);
  for (const Tensor& p : model.parameters()) CHECK(p.requires_grad());
}
