// Module (layers/module.hpp): registered parameters under PyTorch state_dict keys.
#include <doctest/doctest.h>

#include <cmath>
#include <sstream>

#include "tapegrad.hpp"
#include "test_util.hpp"

using tg::Array;
using tg::Tensor;
using namespace test_util;

TEST_CASE("named_parameters uses PyTorch nn.Sequential state_dict keys") {
  tg::Sequential model = cpp_model("lenet");
  std::vector<std::string> keys;
  for (auto& [name, p] : model.named_parameters()) keys.push_back(name);
  CHECK(keys == std::vector<std::string>{"0.weight", "0.bias", "3.weight", "3.bias", "7.weight", "7.bias",
                                         "9.weight", "9.bias", "11.weight", "11.bias"});
  CHECK(model.parameters().size() == 10);
  for (const Tensor& p : model.parameters()) CHECK(p.requires_grad());
}
