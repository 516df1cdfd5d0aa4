// BatchNorm2d (layers/batchnorm.hpp): nn.BatchNorm2d over several training steps and in eval (PyTorch
// fixture), train/eval switching, buffers (names, save/load), the model-file line, errors.
#include <doctest/doctest.h>

#include <string>
#include <utility>
#include <vector>

#include "fixture_runner.hpp"
#include "tapegrad.hpp"
#include "test_util.hpp"

using tg::Array;
using tg::Tensor;
using namespace test_util;

namespace {

// A few training steps on batches of different sizes, so the running statistics move.
void train_steps(tg::Module& model, std::size_t channels, int steps) {
  for (int i = 0; i < steps; ++i) {
    tg::Generator gen(100 + static_cast<std::uint64_t>(i));
    model(Tensor(tg::rand_uniform({static_cast<std::size_t>(2 + i), channels, 3, 3}, -1.f + i, 2.f, gen)));
  }
  tg::clear_tape();
}

}  // namespace

TEST_CASE("BatchNorm2d matches nn.BatchNorm2d over three training steps and then in eval") {
  const ClearTapeOnExit clear_tape;
  const Json& doc = fixture(kBatchNorm).at("module_steps");
  tg::BatchNorm2d bn(doc.at("channels").get<std::size_t>(),
                     {.eps = doc.at("eps").get<float>(), .momentum = doc.at("momentum").get<float>()});
  bn.weight.value() = array_of(doc.at("weight"));
  bn.bias.value() = array_of(doc.at("bias"));
  int step = 0;
  for (const Json& s : doc.at("steps")) {
    INFO("training step ", ++step);
    check_close(bn(Tensor(array_of(s.at("x")))).value(), s.at("output"), "output");
    check_close(bn.running_mean.value(), s.at("running_mean"), "running_mean");
    check_close(bn.running_var.value(), s.at("running_var"), "running_var");
    CHECK(bn.num_batches_tracked.item() == s.at("num_batches_tracked").get<float>());
  }
  bn.eval();
  check_close(bn(Tensor(array_of(doc.at("eval").at("x")))).value(), doc.at("eval").at("output"),
              "eval output");
  CHECK(bn.num_batches_tracked.item() == 3.f);  // eval forwards do not count
}

TEST_CASE("BatchNorm2d starts as PyTorch's: weight 1, bias 0, running statistics 0 and 1, counter 0-d") {
  tg::BatchNorm2d bn(4);
  CHECK(bn.weight.value() == xt::ones<float>({4}));
  CHECK(bn.bias.value() == xt::zeros<float>({4}));
  CHECK(bn.running_mean.value() == xt::zeros<float>({4}));
  CHECK(bn.running_var.value() == xt::ones<float>({4}));
  CHECK(bn.num_batches_tracked.shape() == tg::Shape{});
  CHECK(bn.num_batches_tracked.item() == 0.f);
  CHECK(bn.parameters().size() == 2);
  CHECK(bn.describe() == "BatchNorm2d(4)");
  CHECK(tg::BatchNorm2d(4, {.eps = 1e-3f, .momentum = 0.2f}).describe() ==
        "BatchNorm2d(4, eps 0.001, momentum 0.2)");
}

TEST_CASE("BatchNorm2d in eval: an image alone gives the same output as inside a batch") {
  // (Caffe #5045: a network that still normalizes with batch statistics at test time does not.)
  const ClearTapeOnExit clear_tape;
  tg::BatchNorm2d bn(3);
  train_steps(bn, 3, 3);
  tg::Generator gen(7);
  const Array batch = tg::rand_uniform({4, 3, 5, 5}, -2.f, 2.f, gen);
  const Array alone = xt::view(batch, xt::range(1, 2));
  const Array running_mean = bn.running_mean.value();

  bn.eval();
  const Array in_batch = bn(Tensor(batch)).value();
  const Array by_itself = bn(Tensor(alone)).value();
  CHECK(by_itself == Array(xt::view(in_batch, xt::range(1, 2))));
  CHECK(bn.running_mean.value() == running_mean);

  bn.train();  // batch statistics: the batch's other images change image 1's output
  const Array train_batch = bn(Tensor(batch)).value();
  CHECK(bn(Tensor(alone)).value() != Array(xt::view(train_batch, xt::range(1, 2))));
  CHECK(bn.running_mean.value() != running_mean);
}

TEST_CASE("BatchNorm2d in a Sequential: PyTorch state_dict keys, buffers saved and loaded") {
  const ClearTapeOnExit clear_tape;
  const TempDir dir;
  tg::Sequential model(tg::Conv2D(2, 3, 3, {.padding = tg::Padding2d{1, 1, false}}), tg::BatchNorm2d(3),
                       tg::ReLU());
  CHECK(names_of(model.named_buffers()) ==
        std::vector<std::string>{"1.running_mean", "1.running_var", "1.num_batches_tracked"});
  CHECK(names_of(model.named_state()) == std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias",
                                                                  "1.running_mean", "1.running_var",
                                                                  "1.num_batches_tracked"});
  train_steps(model, 2, 3);
  const std::string path = dir.file("bn.safetensors");
  tg::save(model, path);

  tg::Sequential other(tg::Conv2D(2, 3, 3, {.padding = tg::Padding2d{1, 1, false}}), tg::BatchNorm2d(3),
                       tg::ReLU());
  tg::load(other, path);
  const auto saved = model.named_state(), loaded = other.named_state();
  REQUIRE(saved.size() == loaded.size());
  for (std::size_t i = 0; i < saved.size(); ++i) {
    INFO(saved[i].first);
    CHECK(loaded[i].second.shape() == saved[i].second.shape());
    CHECK(loaded[i].second.value() == saved[i].second.value());
  }
  CHECK(other.named_buffers()[2].second.item() == 3.f);
  CHECK(other.named_buffers()[0].second.value() != xt::zeros<float>({3}));
}

TEST_CASE("batchnorm2d model-file line: options, round trip, shapes, errors") {
  tg::Sequential m = tg::model_from_text(
      "conv2d 4 3\nbatchnorm2d eps=0.001 momentum=0.2\nflatten\nlinear 10\n", {1, 8, 8}, 10, "net.tg");
  auto* bn = dynamic_cast<tg::BatchNorm2d*>(&m[1]);
  REQUIRE(bn != nullptr);
  CHECK(bn->channels == 4);
  CHECK(bn->options.eps == 1e-3f);
  CHECK(bn->options.momentum == 0.2f);
  CHECK(bn->output_shape({4, 6, 6}) == tg::Shape{4, 6, 6});
  CHECK(tg::model_to_text(m) == "conv2d 4 3\nbatchnorm2d eps=0.001 momentum=0.2\nflatten\nlinear 10\n");
  CHECK(tg::model_to_text(tg::model_from_text("batchnorm2d\nflatten\nlinear 3\n", {2, 2, 2}, 3)) ==
        "batchnorm2d\nflatten\nlinear 3\n");

  auto error_of = [](const std::string& text, const tg::Shape& input = {1, 8, 8}) {
    try {
      tg::model_from_text(text + "flatten\nlinear 10\n", input, 10, "net.tg");
    } catch (const tg::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(error_of("batchnorm2d eps=0\n") == "net.tg:1: batchnorm2d eps=0: eps must be a number > 0, got 0");
  CHECK(error_of("batchnorm2d eps=x\n") ==
        "net.tg:1: batchnorm2d eps=x: eps must be a finite number, got 'x'");
  CHECK(error_of("batchnorm2d momentum=2\n") ==
        "net.tg:1: batchnorm2d momentum=2: momentum must be in [0, 1], got 2");
  CHECK(error_of("batchnorm2d momentun=0.1\n") ==
        "net.tg:1: batchnorm2d: unknown key 'momentun' (did you mean 'momentum'? allowed: eps, momentum)");
  CHECK(error_of("batchnorm2d 3\n") == "net.tg:1: batchnorm2d: unexpected argument '3' (usage: batchnorm2d)");
  CHECK(error_of("flatten\nbatchnorm2d\n", {1, 8, 8}) ==
        "net.tg:2: batchnorm2d: input is [64]; batchnorm2d needs [C, H, W] images");
}

TEST_CASE("BatchNorm2d rejects a wrong channel count, non-4-D input and one value per channel in training") {
  const ClearTapeOnExit clear_tape;
  tg::BatchNorm2d bn(3);
  CHECK_THROWS_WITH_AS(bn(Tensor(xt::zeros<float>({2, 4, 3, 3}))),
                       "expected input [N, 3, H, W], got [2, 4, 3, 3]", tg::Error);
  CHECK_THROWS_WITH_AS(bn(Tensor(xt::zeros<float>({2, 3}))), "expected input [N, 3, H, W], got [2, 3]",
                       tg::Error);
  CHECK_THROWS_WITH_AS(bn(Tensor(xt::zeros<float>({1, 3, 1, 1}))),
                       doctest::Contains("Expected more than 1 value per channel when training"), tg::Error);
  CHECK_THROWS_WITH_AS(bn.output_shape({4, 2, 2}), "expected input [3, H, W], got [4, 2, 2]", tg::Error);
  CHECK(bn.num_batches_tracked.item() == 0.f);  // the failed forwards did not count
  bn.eval();
  CHECK(bn(Tensor(xt::zeros<float>({1, 3, 1, 1}))).shape() == tg::Shape{1, 3, 1, 1});
  CHECK_THROWS_AS(tg::BatchNorm2d(0), tg::Error);
  CHECK_THROWS_AS(tg::BatchNorm2d(3, {.eps = -1.f}), tg::Error);
}
