// Model files (layers/model_file.hpp): lenet and convnet from their files equal the C++ models, every error
// names the file and line, model_to_text round-trips, each module remembers its line.
#include <doctest/doctest.h>

#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "tapegrad.hpp"
#include "test_util.hpp"

using test_util::model_error_of;
using test_util::state_shapes;

namespace {

// LeNet as a model file (docs/model-files.md), line for line.
const std::string kLenetText = R"(# lenet.tg
conv2d 6 5 padding=2      # tg::Conv2D(in, 6, 5, {.padding = {2, 2}})
relu
maxpool2d 2
conv2d 16 5
relu
maxpool2d 2
flatten
linear 120                # tg::Linear(in, 120)
relu
linear 84
relu
linear classes            # 'classes': the number of classes of the data
)";

std::string replace(std::string text, const std::string& from, const std::string& to) {
  const std::size_t at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

}  // namespace

TEST_CASE(
    "model file: the documented lenet.tg builds LeNet with 61,706 parameters and the C++ model's keys") {
  tg::Sequential m = tg::model_from_text(kLenetText, {1, 28, 28}, 10, "lenet.tg");
  CHECK(m.size() == 12);
  CHECK(m.num_parameters() == 61706);
  CHECK(m.summary({1, 1, 28, 28}).find("total parameters: 61,706") != std::string::npos);
  CHECK(state_shapes(m) == state_shapes(test_util::cpp_model("lenet")));
  CHECK(m(tg::Tensor(tg::Array(xt::zeros<float>({2, 1, 28, 28})))).shape() == tg::Shape{2, 10});
}

TEST_CASE("model file: apps/models/lenet.tg and convnet.tg equal the C++ models") {
  for (const std::string name : {"lenet", "convnet"}) {
    INFO(name);
    const std::string path = std::string(TAPEGRAD_SOURCE_DIR) + "/apps/models/" + name + ".tg";
    tg::Sequential from_file = tg::model_from_file(path, {1, 28, 28}, 10);
    tg::Sequential cpp = test_util::cpp_model(name);
    CHECK(state_shapes(from_file) == state_shapes(cpp));
    CHECK(from_file.num_parameters() == cpp.num_parameters());
    CHECK(from_file.num_parameters() == (name == "lenet" ? 61706u : 1199882u));
    CHECK(tg::model_to_text(from_file) == tg::model_to_text(cpp));
  }
}

TEST_CASE("model file: each module remembers its file, line and text; Sequential's errors name it") {
  tg::Sequential m = tg::model_from_text(kLenetText, {1, 28, 28}, 10, "lenet.tg");
  CHECK(m[0].source() == "lenet.tg:2 conv2d 6 5 padding=2");
  CHECK(m[3].source() == "lenet.tg:5 conv2d 16 5");
  CHECK(m[11].source() == "lenet.tg:13 linear classes");
  CHECK(tg::Conv2D(1, 2, 3).source().empty());
  CHECK_THROWS_WITH_AS(m(tg::Tensor(tg::Array(xt::zeros<float>({1, 3, 28, 28})))),
                       "layer 0 Conv2D(1 -> 6, kernel 5x5, padding 2x2) (lenet.tg:2 conv2d 6 5 padding=2): "
                       "expected input [N, 1, H, W], got [1, 3, 28, 28]",
                       tg::Error);
}

TEST_CASE("model file: output_shape of every built-in module equals the shape forward() returns") {
  const std::string text =
      "conv2d 8 3x5 stride=2 padding=1x2 dilation=2 bias=false\nleakyrelu slope=0.2\n"
      "maxpool2d 3 stride=2 padding=1\nconv2d 4 3 padding=same\nsigmoid\ntanh\nflatten\ndropout p=0.25\n"
      "linear 20 bias=false\nrelu\nlinear classes\nsoftmax\nlogsoftmax\n";
  tg::Sequential m = tg::model_from_text(text, {3, 32, 32}, 10);
  m.eval();
  tg::NoGradGuard no_grad;
  tg::Tensor x(tg::Array(xt::zeros<float>({2, 3, 32, 32})));
  tg::Shape per_example{3, 32, 32};
  for (std::size_t i = 0; i < m.size(); ++i) {
    INFO("layer ", i, " ", m[i].describe());
    x = m[i](x);
    per_example = m[i].output_shape(per_example);
    tg::Shape expected(x.shape().begin() + 1, x.shape().end());
    CHECK(per_example == expected);
  }
  CHECK(m.output_shape({3, 32, 32}) == tg::Shape{10});
}

TEST_CASE("model file: model_to_text parses back to the same model") {
  const std::string text =
      "conv2d 8 3x5 stride=2 padding=1x2 dilation=2 bias=false\nleakyrelu slope=0.2\n"
      "maxpool2d 3 stride=2 padding=1\nconv2d 4 3 padding=same\nconv2d 4 3 padding=valid\nsigmoid\ntanh\n"
      "flatten\ndropout p=0.25\nlinear 20 bias=false\nrelu\nlinear classes\nsoftmax\nlogsoftmax\n";
  tg::Sequential m = tg::model_from_text(text, {3, 32, 32}, 10);
  const std::string printed = tg::model_to_text(m);
  CHECK(printed ==
        "conv2d 8 3x5 stride=2 padding=1x2 dilation=2 bias=false\nleakyrelu slope=0.2\n"
        "maxpool2d 3 stride=2 padding=1\nconv2d 4 3 padding=same\nconv2d 4 3\nsigmoid\ntanh\n"
        "flatten\ndropout p=0.25\nlinear 20 bias=false\nrelu\nlinear 10\nsoftmax\nlogsoftmax\n");
  tg::Sequential again = tg::model_from_text(printed, {3, 32, 32}, 10);
  CHECK(state_shapes(again) == state_shapes(m));
  CHECK(tg::model_to_text(again) == printed);

  // A Sequential of built-in modules written in C++ prints too.
  tg::Sequential cpp(tg::Conv2D(1, 6, 5, {.padding = {2, 2}}), tg::ReLU(), tg::MaxPool2D(2), tg::Flatten(),
                     tg::Linear(1176, 10), tg::Dropout(0.5f), tg::LeakyReLU());
  CHECK(tg::model_to_text(cpp) ==
        "conv2d 6 5 padding=2\nrelu\nmaxpool2d 2\nflatten\nlinear 10\ndropout p=0.5\nleakyrelu slope=0.01\n");
  CHECK(state_shapes(tg::model_from_text(tg::model_to_text(cpp), {1, 28, 28}, 10)) == state_shapes(cpp));
}

TEST_CASE("model_to_text: a layer without a model-file line is a tg::Error naming it") {
  tg::Sequential m;
  m.add(std::make_unique<tg::Sequential>());
  CHECK_THROWS_WITH_AS(tg::model_to_text(m),
                       "model_to_text: layer 0 Sequential(0 layers) has no model-file line (override "
                       "Module::to_line(), or build it from a model file)",
                       tg::Error);
}

TEST_CASE("model file: comments, blank lines, tabs and CRLF are accepted") {
  tg::Sequential m =
      tg::model_from_text("\r\n# a comment\n\n  flatten\t# flat\r\n\tlinear   classes  \n", {1, 4, 4}, 3);
  CHECK(m.size() == 2);
  CHECK(m[1].source() == "<text>:5 linear classes");
}

TEST_CASE("model file: an unknown layer names the nearest one and lists the known ones") {
  const std::string message = model_error_of("# first\nconv2 6 5\n");
  CHECK(message.rfind("net.tg:2: unknown layer 'conv2' (did you mean 'conv2d'? known: ", 0) == 0);
  // Each built-in by name: other tests in this process register layers of their own (silu, test_scale).
  for (const char* known : {"avgpool2d, ", "batchnorm2d, ", " conv2d, dropout, flatten, ",
                            ", globalavgpool2d, ", ", relu, ", ", sigmoid, ", ", softmax, ", ", tanh"})
    CHECK(message.find(known) != std::string::npos);
  CHECK(model_error_of("resnet\n").rfind("net.tg:1: unknown layer 'resnet' (known: avgpool2d, ", 0) == 0);
}

TEST_CASE("model file: unknown, duplicate and misplaced keys and arguments") {
  CHECK(model_error_of("# a\n\nconv2d 6 5 strid=2\n") ==
        "net.tg:3: conv2d: unknown key 'strid' (did you mean 'stride'? allowed: stride, padding, dilation, "
        "groups, bias)");
  CHECK(model_error_of("conv2d 6 5 stride=2 stride=1\n") == "net.tg:1: conv2d: key 'stride' given twice");
  CHECK(model_error_of("conv2d 6 padding=2 5\n") ==
        "net.tg:1: conv2d: positional argument '5' after the key=value options");
  CHECK(model_error_of("relu x=1\n") == "net.tg:1: relu: unknown key 'x' (relu takes no options)");
  CHECK(model_error_of("relu 5\n") == "net.tg:1: relu: unexpected argument '5' (usage: relu)");
  CHECK(model_error_of("flatten\nlinear 10 20\n") ==
        "net.tg:2: linear: unexpected argument '20' (usage: linear OUT)");
  CHECK(model_error_of("conv2d 6 5 stride=\n") == "net.tg:1: conv2d: missing value for key 'stride'");
  CHECK(model_error_of("conv2d 6 5 =2\n") == "net.tg:1: conv2d: '=2' has no key before '='");
}

TEST_CASE("model file: missing and malformed values") {
  CHECK(model_error_of("conv2d -3 5\n") == "net.tg:1: conv2d -3 5: OUT must be >= 1, got -3");
  CHECK(model_error_of("conv2d 6 0\n") == "net.tg:1: conv2d 6 0: KERNEL must be >= 1, got 0");
  CHECK(model_error_of("conv2d 6\n") == "net.tg:1: conv2d 6: missing KERNEL (usage: conv2d OUT KERNEL)");
  CHECK(model_error_of("conv2d 6 five\n") ==
        "net.tg:1: conv2d 6 five: KERNEL must be a whole number, got 'five'");
  CHECK(model_error_of("conv2d 6 3x\n") == "net.tg:1: conv2d 6 3x: KERNEL must be a whole number, got ''");
  CHECK(model_error_of("flatten\nlinear 0\n") == "net.tg:2: linear 0: OUT must be >= 1, got 0");
  CHECK(model_error_of("flatten\nlinear ten\n") ==
        "net.tg:2: linear ten: OUT must be a whole number or 'classes', got 'ten'");
  CHECK(model_error_of("conv2d 6 5 stride=0\n") ==
        "net.tg:1: conv2d 6 5 stride=0: stride must be >= 1, got 0");
  CHECK(model_error_of("conv2d 6 5 padding=-1\n") ==
        "net.tg:1: conv2d 6 5 padding=-1: padding must be >= 0, got -1");
  CHECK(model_error_of("flatten\nlinear 99999999999\n") ==
        "net.tg:2: linear 99999999999: OUT '99999999999' is out of range");
  CHECK(model_error_of("flatten\nlinear 20000000\n") ==
        "net.tg:2: linear 20000000: OUT '20000000' is out of range (at most 16777216)");
  CHECK(model_error_of("conv2d 6 5 bias=maybe\n") ==
        "net.tg:1: conv2d 6 5 bias=maybe: bias must be true or false, got 'maybe'");
  CHECK(model_error_of("dropout p=1\n") == "net.tg:1: dropout p=1: p must be in [0, 1), got 1");
  CHECK(model_error_of("leakyrelu slope=nan\n") ==
        "net.tg:1: leakyrelu slope=nan: slope must be a finite number, got 'nan'");
  CHECK(model_error_of("conv2d 16000000 5\n") ==
        "net.tg:1: conv2d 16000000 5: the layer would have more than 268435456 parameters, the limit");
}

TEST_CASE("model file: a layer that cannot take the shape reaching it") {
  CHECK(model_error_of(replace(kLenetText, "flatten\n", "# no flatten\n")) ==
        "net.tg:9: linear 120: input is [16, 5, 5]; add 'flatten' before it");
  CHECK(model_error_of("flatten\nconv2d 6 5\n") ==
        "net.tg:2: conv2d 6 5: input is [784]; conv2d needs [C, H, W] images");
  CHECK(model_error_of("maxpool2d 100\n") ==
        "net.tg:1: maxpool2d 100: kernel 100x100 is larger than the padded input 28x28 (input [1, 28, 28])");
  CHECK(model_error_of("conv2d 6 29\n").rfind("net.tg:1: conv2d 6 29: conv2d: kernel 29x29 ", 0) == 0);
}

TEST_CASE("model file: the model's output must be [classes], and a model has layers") {
  CHECK(model_error_of(replace(kLenetText, "linear classes", "")) ==
        "net.tg: the model's output is [84] but the data has 10 classes; end with 'linear classes'");
  CHECK(model_error_of("") == "net.tg: the model has no layers");
  CHECK(model_error_of("# only a comment\n\n   \n") == "net.tg: the model has no layers");
}

TEST_CASE("model file: binary junk, long lines, huge files and layer counts are refused") {
  CHECK(model_error_of(std::string("\x7f"
                                   "ELF\x02\x01\x01",
                                   7)) == "net.tg:1: byte 0x7f is not text; is this a model file?");
  CHECK(model_error_of(std::string("relu\n\0relu", 10)) ==
        "net.tg:2: byte 0x00 is not text; is this a model file?");
  CHECK(model_error_of("relu \xc3\xa9\n") ==
        "net.tg:1: byte 0xc3 outside a comment; a model file is ASCII text");
  CHECK(model_error_of(std::string(2000, 'a')) ==
        "net.tg:1: the line is 2000 characters long; the limit is 1000");
  CHECK(model_error_of(std::string(tg::kMaxModelFileBytes + 1, '#')) ==
        "net.tg: the model file is 1048577 bytes; the limit is 1048576");
  std::string many;
  for (int i = 0; i < 10001; ++i) many += "relu\n";
  CHECK(model_error_of(many, {10}, 10) == "net.tg:10001: more than 10000 layers");
  for (int i = 0; i < 9999; ++i) many.resize(many.size() - 5);
  CHECK(tg::model_from_text(many, {10}, 10).size() == 2);
}

TEST_CASE("model_from_file: a missing file and the input shape and classes are checked") {
  CHECK_THROWS_WITH_AS(tg::model_from_file("/nonexistent/net.tg", {1, 28, 28}, 10),
                       "/nonexistent/net.tg: cannot open the model file", tg::Error);
  CHECK_THROWS_WITH_AS(tg::model_from_text("relu\n", {1, 0, 28}, 10, "net.tg"),
                       "net.tg: the input shape [1, 0, 28] must have at least one axis, each >= 1",
                       tg::Error);
  CHECK_THROWS_WITH_AS(tg::model_from_text("relu\n", {10}, 0, "net.tg"),
                       "net.tg: the number of classes must be >= 1, got 0", tg::Error);
  test_util::TempDir dir;
  const std::string path = (dir.path / "small.tg").string();
  std::ofstream(path) << "flatten\nlinear classes\n";
  CHECK(tg::model_from_file(path, {1, 2, 2}, 3).num_parameters() == 15);
}

TEST_CASE("model file: lowered limits, and the fuzzer's seed files build (or fail) as they should") {
  tg::ModelFileLimits limits;
  limits.max_parameters = 100;
  CHECK_THROWS_WITH_AS(tg::model_from_text("flatten\nlinear 8\nlinear 3\n", {1, 4, 4}, 3, "net.tg", limits),
                       "net.tg:2: linear 8: the layer would have more than 100 parameters, the limit",
                       tg::Error);
  limits.max_layers = 1;
  CHECK_THROWS_WITH_AS(tg::model_from_text("relu\nrelu\n", {3}, 3, "net.tg", limits),
                       "net.tg:2: more than 1 layers", tg::Error);
  const std::string corpus = std::string(TAPEGRAD_SOURCE_DIR) + "/tests/fuzz/corpus/model_file/";
  CHECK(tg::model_from_file(corpus + "small_lenet.tg", {1, 12, 12}, 3).size() == 10);
  CHECK(tg::model_from_file(corpus + "every_layer.tg", {1, 12, 12}, 3).size() == 13);
  CHECK_THROWS_AS(tg::model_from_file(corpus + "errors.tg", {1, 12, 12}, 3), tg::Error);
}
