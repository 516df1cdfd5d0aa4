// Model-file blocks (layers/model_file.hpp): residual ... [shortcut ...] end, repeat N ... end, nesting, the
// 'in' token, relu6, reserved keywords; every fault of a block named by file:line; model_to_text writes
// blocks; apps/models/resnet20.tg against its PyTorch twin (tests/gen_fixtures_residual.py).
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "fixture_runner.hpp"
#include "tapegrad.hpp"
#include "test_util.hpp"

using tg::Tensor;
using namespace test_util;

namespace {

// The documented resnet-style stage, line for line.
const std::string kStageText = R"(# resnet-style stage written with blocks
conv2d 16 3 padding=1 bias=false
batchnorm2d
relu
repeat 3                 # the lines up to the matching 'end', 3 times, each copy with its own parameters
  residual               # body: the lines up to 'shortcut' or 'end'; output body(x) + shortcut(x)
    conv2d 16 3 padding=1 bias=false
    batchnorm2d
    relu
    conv2d in 3 padding=1 bias=false    # 'in': the channels of the input reaching this line
    batchnorm2d
  end                    # no 'shortcut' section: the identity
  relu
end
residual
  conv2d 32 3 stride=2 padding=1 bias=false
  batchnorm2d
  relu
  conv2d 32 3 padding=1 bias=false
  batchnorm2d
shortcut                 # the shortcut branch, built for the block's input
  conv2d 32 1 stride=2 bias=false
  batchnorm2d
end
relu6
globalavgpool2d
linear classes
)";

}  // namespace

TEST_CASE(
    "model file blocks: the documented stage builds one module per block, keys I.body.J and I.shortcut.J") {
  tg::Sequential m = tg::model_from_text(kStageText, {3, 32, 32}, 10, "net.tg");
  // conv, bn, relu, 3 x (residual, relu), residual, relu6, pool, linear
  REQUIRE(m.size() == 13);
  CHECK(dynamic_cast<tg::Residual*>(&m[3]) != nullptr);
  CHECK(dynamic_cast<tg::Residual*>(&m[9]) != nullptr);
  CHECK(dynamic_cast<tg::ReLU6*>(&m[10]) != nullptr);
  const auto shapes = state_shapes(m);
  const auto has = [&](const std::string& key, const tg::Shape& shape) {
    for (const auto& [k, s] : shapes) {
      if (k == key) return s == shape;
    }
    return false;
  };
  CHECK(has("3.body.0.weight", {16, 16, 3, 3}));
  CHECK(has("3.body.3.weight", {16, 16, 3, 3}));  // 'in' = 16
  CHECK(has("7.body.4.running_var", {16}));
  CHECK(has("9.body.0.weight", {32, 16, 3, 3}));
  CHECK(has("9.shortcut.0.weight", {32, 16, 1, 1}));
  CHECK(has("9.shortcut.1.num_batches_tracked", {}));
  CHECK_FALSE(has("3.shortcut.0.weight", {16, 16, 1, 1}));
  // each copy of a repeat has its own parameters
  CHECK(m.at<tg::Residual>(3).body().at<tg::Conv2D>(0).weight.node() !=
        m.at<tg::Residual>(5).body().at<tg::Conv2D>(0).weight.node());
  CHECK(m.at<tg::Residual>(9).source_location() == "net.tg:15");
  CHECK(m.at<tg::Residual>(5).source_location() == "net.tg:6 (copy 2 of 3)");
  CHECK(m.at<tg::Residual>(5).body()[3].source() ==
        "net.tg:10 (copy 2 of 3) conv2d in 3 padding=1 bias=false");
  const Tensor y = m(Tensor(xt::zeros<float>({2, 3, 32, 32})));
  CHECK(y.shape() == tg::Shape{2, 10});
  tg::clear_tape();
}

TEST_CASE("model file blocks: indentation is free and means nothing; blocks nest") {
  const std::string flat =
      "residual\nresidual\nconv2d in 3 padding=1\nend\nrelu\nshortcut\nconv2d in 1\nend\nflatten\nlinear "
      "classes\n";
  const std::string indented =
      "residual\n    residual\n conv2d in 3 padding=1\n      end\n\trelu\nshortcut\n  conv2d in 1\nend\n"
      "flatten\nlinear classes\n";
  tg::Sequential a = tg::model_from_text(flat, {2, 4, 4}, 3, "net.tg");
  tg::Sequential b = tg::model_from_text(indented, {2, 4, 4}, 3, "net.tg");
  CHECK(state_shapes(a) == state_shapes(b));
  CHECK(state_shapes(a).front().first == "0.body.0.body.0.weight");
  CHECK(state_shapes(a)[2].first == "0.shortcut.0.weight");
}

TEST_CASE("model file blocks: 'in' in OUT of conv2d and linear, groups= and K*in") {
  tg::Sequential m = tg::model_from_text(
      "conv2d 6*in 1\nconv2d in 3 groups=in padding=1\nconv2d 2*in 1 groups=3\nflatten\nlinear in\nlinear "
      "classes\n",
      {3, 4, 4}, 5, "net.tg");
  CHECK(m.at<tg::Conv2D>(0).weight.shape() == tg::Shape{18, 3, 1, 1});
  CHECK(m.at<tg::Conv2D>(1).weight.shape() == tg::Shape{18, 1, 3, 3});
  CHECK(m.at<tg::Conv2D>(2).weight.shape() == tg::Shape{36, 6, 1, 1});
  CHECK(m.at<tg::Linear>(4).weight.shape() == tg::Shape{576, 576});
}

TEST_CASE("model file blocks: relu6 is a layer line") {
  tg::Sequential m = tg::model_from_text("relu6\nflatten\nlinear classes\n", {1, 2, 2}, 2, "net.tg");
  CHECK(m[0].to_line() == "relu6");
  CHECK(tg::model_to_text(m) == "relu6\nflatten\nlinear 2\n");
}

TEST_CASE("model_to_text writes blocks (repeats written out) and round-trips") {
  tg::Sequential m = tg::model_from_text(kStageText, {3, 32, 32}, 10, "net.tg");
  const std::string text = tg::model_to_text(m);
  INFO(text);
  CHECK(text.find("residual\n  conv2d 16 3") != std::string::npos);
  CHECK(text.find("shortcut\n  conv2d 32 1 stride=2") != std::string::npos);
  CHECK(text.find("repeat") == std::string::npos);
  tg::Sequential again = tg::model_from_text(text, {3, 32, 32}, 10, "again.tg");
  CHECK(state_shapes(again) == state_shapes(m));
  CHECK(tg::model_to_text(again) == text);
}

TEST_CASE("summary shows the nesting: indented rows with their paths and lines, and the repeat's copy") {
  tg::Sequential m = tg::model_from_text(kStageText, {3, 32, 32}, 10, "net.tg");
  const std::string s = m.summary({1, 3, 32, 32});
  INFO(s);
  CHECK(s.find("3.body.0") != std::string::npos);
  CHECK(s.find("9.shortcut.0") != std::string::npos);
  CHECK(s.find("  Conv2D(16 -> 32") != std::string::npos);  // indented under its block
  CHECK(s.find("net.tg:6 (copy 3 of 3)") != std::string::npos);
  CHECK(s.find("total parameters: " + tg::with_commas(m.num_parameters())) != std::string::npos);
}

TEST_CASE("the tape names a layer of a model-file block by its path and line") {
  test_util::ClearTapeOnExit clear;
  tg::Sequential m = tg::model_from_text(kStageText, {3, 32, 32}, 10, "net.tg");
  (void)m(Tensor(xt::zeros<float>({1, 3, 32, 32}), true));
  std::ostringstream tape;
  tg::print_tape(tape);
  INFO(tape.str());
  CHECK(
      tape.str().find("[3.body.0.Conv2D net.tg:7 (copy 1 of 3) conv2d 16 3 padding=1 bias=false] conv2d(") !=
      std::string::npos);
  CHECK(tape.str().find("[9.shortcut.0.Conv2D net.tg:22 conv2d 32 1 stride=2 bias=false] conv2d(") !=
        std::string::npos);
}

// ---- errors: one per fault, each naming file:line ----

TEST_CASE("model file blocks error: an unclosed residual, at the end of the file, naming where it opened") {
  CHECK(model_error_of("conv2d 4 3\nresidual\n  relu\n\n") ==
        "net.tg:4: end of file inside the residual block opened at net.tg:2; close it with 'end'");
}

TEST_CASE("model file blocks error: 'end' with no open block") {
  CHECK(model_error_of("relu\nend\n") == "net.tg:2: 'end' with no open block (residual or repeat)");
}

TEST_CASE("model file blocks error: 'shortcut' twice") {
  CHECK(
      model_error_of("residual\nrelu\nshortcut\nrelu\nshortcut\nrelu\nend\n") ==
      "net.tg:5: a second 'shortcut' in the residual block opened at net.tg:1 (its shortcut section began at "
      "net.tg:3)");
}

TEST_CASE("model file blocks error: 'shortcut' outside a residual") {
  CHECK(model_error_of("relu\nshortcut\n") == "net.tg:2: 'shortcut' outside a residual block");
  CHECK(model_error_of("repeat 2\nrelu\nshortcut\nend\n") ==
        "net.tg:3: 'shortcut' outside a residual block (the innermost open block is the repeat at net.tg:1)");
}

TEST_CASE("model file blocks error: an empty body") {
  CHECK(model_error_of("relu\nresidual\nend\n") ==
        "net.tg:3: the residual block opened at net.tg:2 has an empty body");
  CHECK(model_error_of("residual\n# nothing\nshortcut\nrelu\nend\n") ==
        "net.tg:3: the residual block opened at net.tg:1 has an empty body");
  CHECK(model_error_of("repeat 2\nend\n") == "net.tg:2: the repeat block opened at net.tg:1 has no lines");
}

TEST_CASE("model file blocks error: an empty shortcut section") {
  CHECK(model_error_of("residual\nrelu\nshortcut\nend\n") ==
        "net.tg:4: the shortcut section of the residual block opened at net.tg:1 (at net.tg:3) is empty; "
        "remove "
        "'shortcut' for the identity");
}

TEST_CASE("model file blocks error: repeat 0 and repeat -1") {
  CHECK(model_error_of("repeat 0\nrelu\nend\n") ==
        "net.tg:1: repeat 0: the count must be a whole number from 1 to 1000");
  CHECK(model_error_of("repeat -1\nrelu\nend\n") ==
        "net.tg:1: repeat -1: the count must be a whole number from 1 to 1000");
  CHECK(model_error_of("repeat two\nrelu\nend\n") ==
        "net.tg:1: repeat two: the count must be a whole number from 1 to 1000");
  CHECK(model_error_of("repeat\nrelu\nend\n") ==
        "net.tg:1: repeat takes one count: 'repeat N' (1 <= N <= 1000)");
}

TEST_CASE(
    "model file blocks error: repeat 1000000 is over the limit, with the count of layers it would make") {
  CHECK(model_error_of("repeat 1000000\nrelu\nrelu\nend\n") ==
        "net.tg:1: repeat 1000000: at most 1000 copies (this one would make 2,000,000 layers; a model has at "
        "most 10,000)");
  CHECK(model_error_of("repeat 99999999999999999999999\nrelu\nend\n") ==
        "net.tg:1: repeat 99999999999999999999999: at most 1000 copies");
  CHECK(
      model_error_of("repeat 9223372036854775807\nrelu\nrelu\nrelu\nend\n") ==
      "net.tg:1: repeat 9223372036854775807: at most 1000 copies (this one would make 2.76701e+19 layers; a "
      "model has at most 10,000)");
  // nested repeats within the count limit, over the layer limit
  CHECK(model_error_of("repeat 1000\nrepeat 1000\nrelu\nend\nend\n") ==
        "net.tg:1: repeat 1000: the block would make 1,000,000 layers; a model has at most 10,000");
}

TEST_CASE("model file blocks error: nesting 10,000 deep hits a depth limit, no stack overflow") {
  std::string deep;
  for (int i = 0; i < 10000; ++i) deep += "residual\n";
  deep += "relu\n";
  for (int i = 0; i < 10000; ++i) deep += "end\n";
  CHECK(model_error_of(deep) == "net.tg:101: residual: blocks nest more than 100 deep, the limit");
  std::string deep_repeat;
  for (int i = 0; i < 10000; ++i) deep_repeat += "repeat 1\n";
  CHECK(model_error_of(deep_repeat) == "net.tg:101: repeat: blocks nest more than 100 deep, the limit");
}

TEST_CASE("model file blocks error: 'in' where a line takes no channel count") {
  CHECK(model_error_of("maxpool2d in\n") ==
        "net.tg:1: maxpool2d in: 'in' for KERNEL: 'in' stands for a channel count, and KERNEL is not one "
        "('in' is "
        "allowed in OUT of conv2d and linear, groups= and K*in)");
  CHECK(model_error_of("dropout p=in\n") ==
        "net.tg:1: dropout p=in: 'in' for p: 'in' stands for a channel count, and p is not one ('in' is "
        "allowed "
        "in OUT of conv2d and linear, groups= and K*in)");
  CHECK(model_error_of("in\n") ==
        "net.tg:1: 'in' stands for a channel count in a layer line; it is not a layer");
}

TEST_CASE("model file blocks error: conv2d 6*in*in 1") {
  CHECK(model_error_of("conv2d 6*in*in 1\n") ==
        "net.tg:1: conv2d 6*in*in 1: OUT '6*in*in': a product is K*in, one whole number K times 'in' (e.g. "
        "6*in)");
}

TEST_CASE("model file blocks error: groups=in that does not divide") {
  CHECK(model_error_of("conv2d 6 3 groups=in\n", {4, 8, 8}) ==
        "net.tg:1: conv2d 6 3 groups=in: groups=4 does not divide the 6 output channels");
}

TEST_CASE(
    "model file blocks error: body and shortcut shapes differ at 'end', naming both and the opening line") {
  std::string text;
  for (int i = 0; i < 13; ++i) text += "# line " + std::to_string(i + 1) + "\n";
  text +=
      "residual\n  conv2d 32 3 stride=2 padding=1 bias=false\n  batchnorm2d\n  relu\n"
      "  conv2d 32 3 padding=1 bias=false\n  batchnorm2d\n\nend\nglobalavgpool2d\nlinear classes\n";
  CHECK(model_error_of(text, {16, 28, 28}) ==
        "net.tg:21: end: the body gives [32, 14, 14] but the shortcut gives [16, 28, 28] (block opened at "
        "net.tg:14); add a 'shortcut' section, e.g. 'conv2d 32 1 stride=2'");
  CHECK(model_error_of("residual\nconv2d 8 1\nshortcut\nconv2d 4 1\nend\n", {2, 5, 5}) ==
        "net.tg:5: end: the body gives [8, 5, 5] but the shortcut gives [4, 5, 5] (block opened at "
        "net.tg:1); the "
        "shortcut must end with the body's shape");
}

TEST_CASE("model file blocks error: a body that changes the spatial size with an identity shortcut") {
  CHECK(
      model_error_of("residual\nconv2d in 3\nend\n", {4, 8, 8}) ==
      "net.tg:3: end: the body gives [4, 6, 6] but the shortcut gives [4, 8, 8] (block opened at net.tg:1); "
      "the body changes the height and width: pad its convolutions (e.g. padding=1 for a 3x3 kernel) or add "
      "a "
      "'shortcut' section that does the same");
}

TEST_CASE("model file blocks error: an error inside a repeat names the copy") {
  CHECK(model_error_of("repeat 3\nmaxpool2d 2\nend\n", {1, 4, 4})
            .rfind("net.tg:2 (copy 3 of 3): maxpool2d 2: ", 0) == 0);
}

TEST_CASE("model file blocks error: the reserved keywords are not layers, and register_layer refuses them") {
  for (const char* word : {"save", "add", "concat", "from", "branch"}) {
    CHECK(model_error_of(std::string(word) + "\n") ==
          "net.tg:1: '" + std::string(word) +
              "' is a keyword reserved for later (save, add, concat, from, branch), not a layer");
    CHECK_THROWS_AS(tg::register_layer(word, [](tg::LayerArgs&) { return std::make_unique<tg::ReLU>(); }),
                    tg::Error);
  }
  CHECK_THROWS_AS(tg::register_layer("residual", [](tg::LayerArgs&) { return std::make_unique<tg::ReLU>(); }),
                  tg::Error);
  CHECK(model_error_of("residual 3\nrelu\nend\n") ==
        "net.tg:1: residual takes no arguments, got '3' (the body follows on its own lines)");
}

// ---- ResNet-20 ----

TEST_CASE("apps/models/resnet20.tg: parameters, state_dict keys and shapes of its PyTorch twin") {
  const Json& doc = fixture("residual_torch.json");
  REQUIRE_MESSAGE(doc.is_object(),
                  "tests/fixtures/residual_torch.json is missing (tests/gen_fixtures_residual.py)");
  const std::string path = std::string(TAPEGRAD_SOURCE_DIR) + "/apps/models/resnet20.tg";
  for (const Json& twin : doc.at("resnet20")) {
    const tg::Shape input = twin.at("input_shape").get<tg::Shape>();
    INFO("input ", tg::shape_str(input));
    tg::Sequential m = tg::model_from_file(path, input, twin.at("classes").get<int>());
    CHECK(m.num_parameters() == twin.at("parameters").get<std::size_t>());
    std::vector<std::pair<std::string, tg::Shape>> want;
    for (const Json& entry : twin.at("state")) {
      want.emplace_back(entry.at(0).get<std::string>(), entry.at(1).get<tg::Shape>());
    }
    CHECK(state_shapes(m) == want);
  }
  CHECK(tg::model_from_file(path, {3, 32, 32}, 10).num_parameters() == 272474);
  CHECK(tg::model_from_file(path, {1, 28, 28}, 10).num_parameters() == 272186);
}

TEST_CASE("PyTorch: the fixture's residual model file gives torch's logits, loss and gradients") {
  const Json& doc = fixture("residual_torch.json");
  REQUIRE(doc.is_object());
  const Json& net = doc.at("small_net");
  tg::Sequential m =
      tg::model_from_text(net.at("model_text").get<std::string>(), net.at("input_shape").get<tg::Shape>(),
                          net.at("classes").get<int>(), "small.tg");
  std::vector<std::string> keys;
  for (auto& [name, t] : m.named_state()) {
    keys.push_back(name);
    REQUIRE(net.at("state").contains(name));
    t.value() = array_of(net.at("state").at(name));
  }
  CHECK(keys == net.at("state_keys").get<std::vector<std::string>>());
  Tensor x(array_of(net.at("input")), true);
  const Tensor logits = m(x);
  check_close(logits.value(), net.at("logits"), "logits");
  const Tensor loss = tg::cross_entropy(logits, net.at("labels").get<std::vector<int>>());
  loss.backward();
  for (const auto& [name, p] : m.named_parameters()) check_close(p.grad(), net.at("grads").at(name), name);
  check_close(x.grad(), net.at("input_grad"), "input grad");
}

TEST_CASE("model file blocks: the fuzzer's block seed files build (or fail) as they should") {
  const std::string corpus = std::string(TAPEGRAD_SOURCE_DIR) + "/tests/fuzz/corpus/model_file/";
  tg::ModelFileLimits limits;  // the fuzzer's
  limits.max_bytes = 4096;
  limits.max_layers = 64;
  limits.max_parameters = 100000;
  limits.max_output_elements = 100000;
  const auto build = [&](const std::string& name) {
    std::ifstream in(corpus + name);
    std::stringstream text;
    text << in.rdbuf();
    return tg::model_from_text(text.str(), {1, 12, 12}, 3, name, limits);
  };
  tg::Sequential m = build("residual_blocks.tg");
  CHECK(tg::model_from_text(tg::model_to_text(m), {1, 12, 12}, 3, "printed.tg", limits).num_parameters() ==
        m.num_parameters());
  CHECK_THROWS_WITH_AS(build("block_errors.tg"),
                       "block_errors.tg:6: the residual block opened at block_errors.tg:5 has an empty body",
                       tg::Error);
  CHECK_THROWS_WITH_AS(build("deep_nesting.tg"),
                       "deep_nesting.tg:101: residual: blocks nest more than 100 deep, the limit", tg::Error);
}
