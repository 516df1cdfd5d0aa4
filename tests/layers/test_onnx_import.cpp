// ONNX import (layers/onnx/import.cpp): the files PyTorch 1.13's torch.onnx.export writes for twins of the
// built-in models and for a net of every mappable op (tests/gen_fixtures_onnx.py; BN folded into Conv,
// Pad + AveragePool, Clip as relu6, GlobalAveragePool + Flatten, Gemm, Add as residual blocks) give PyTorch's
// logits; export -> import -> export round-trips; and every bad file of the fixtures is a tg::Error naming
// what is wrong, never a crash.
#include <doctest/doctest.h>

#include <onnx/onnx_pb.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "layers/onnx/onnx.hpp"
#include "tapegrad.hpp"
#include "test_util.hpp"

using namespace test_util;

namespace {

const std::string kOnnxDir = TG_FIXTURE_DIR "/onnx";

const nlohmann::json& onnx_expected() {
  static const nlohmann::json doc = nlohmann::json::parse(read_text(kOnnxDir + "/expected.json"));
  return doc;
}

// The generator's batch: x[i] = 1.5 sin(0.37 i) + 0.5 cos(0.011 i) over [3, C, H, W], in double, then float.
tg::Array formula_batch(const tg::Shape& per_example) {
  tg::Shape shape{3};
  shape.insert(shape.end(), per_example.begin(), per_example.end());
  tg::Array x = tg::Array::from_shape(shape);
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double d = static_cast<double>(i);
    x.data()[i] = static_cast<float>(1.5 * std::sin(0.37 * d) + 0.5 * std::cos(0.011 * d));
  }
  return x;
}

tg::Array eval_forward(tg::Sequential& model, const tg::Array& x) {
  tg::NoGradGuard no_grad;
  model.eval();
  return model(tg::Tensor(x)).value();
}

}  // namespace

TEST_CASE("import of PyTorch's ONNX files gives PyTorch's logits (every model of gen_fixtures_onnx.py)") {
  const nlohmann::json& models = onnx_expected().at("models");
  REQUIRE(models.size() >= 7);
  for (const auto& [key, m] : models.items()) {
    CAPTURE(key);
    tg::ImportedOnnx imported = tg::load_onnx(kOnnxDir + "/" + m.at("file").get<std::string>());
    const auto input = m.at("input").get<std::vector<std::size_t>>();
    CHECK(imported.info.input == tg::Shape(input.begin(), input.end()));
    CHECK(imported.classes == m.at("classes").get<std::size_t>());
    tg::Sequential& model = imported.model;
    const tg::Array got = eval_forward(model, formula_batch(imported.info.input));
    const nlohmann::json& logits = m.at("batch").at("logits");
    const auto want = logits.at("data").get<std::vector<float>>();
    REQUIRE(got.size() == want.size());
    float worst = 0;
    for (std::size_t i = 0; i < want.size(); ++i)
      worst = std::max(worst, std::abs(got.data()[i] - want[i]) / (1.f + std::abs(want[i])));
    CHECK_MESSAGE(worst < 2e-5f, "worst |tapegrad - PyTorch| / (1 + |PyTorch|) = ", worst);
    // The model text rebuilds the same layers (what a checkpoint of it holds).
    const tg::Sequential rebuilt =
        tg::model_from_text(imported.model_text, imported.info.input, static_cast<int>(imported.classes));
    CHECK(state_shapes(rebuilt) == state_shapes(model));
  }
}

TEST_CASE("import maps PyTorch's graph onto the layer lines a person would write") {
  const tg::ImportedOnnx small = tg::load_onnx(kOnnxDir + "/small_ops_op13.onnx");
  const std::string& text = small.model_text;
  CAPTURE(text);
  CHECK(text.starts_with("# imported from small_ops_op13.onnx (pytorch 1.13"));
  for (const char* line :
       {"leakyrelu slope=0.2\n", "avgpool2d 3 stride=1 padding=1\n", "relu6\n", "residual\n",
        "shortcut\n  conv2d 8 1 stride=2\nend\n", "linear 5\n", "logsoftmax\n"})
    CHECK_MESSAGE(text.find(line) != std::string::npos, "missing: ", line);
  // resnet20: batch norm folded into its convolutions, 9 residual blocks, 2 of them with a shortcut section.
  const tg::ImportedOnnx resnet = tg::load_onnx(kOnnxDir + "/resnet20_trained_op13.onnx");
  std::size_t blocks = 0, shortcuts = 0, batchnorms = 0;
  for (std::size_t p = 0; (p = resnet.model_text.find("residual\n", p)) != std::string::npos; ++p) ++blocks;
  for (std::size_t p = 0; (p = resnet.model_text.find("shortcut\n", p)) != std::string::npos; ++p)
    ++shortcuts;
  for (std::size_t p = 0; (p = resnet.model_text.find("batchnorm2d", p)) != std::string::npos; ++p)
    ++batchnorms;
  CHECK(blocks == 9);
  CHECK(shortcuts == 2);
  CHECK(batchnorms == 0);
}

TEST_CASE("export -> import -> export gives the same graph, and the imported model the same outputs") {
  tg::Sequential model = tg::model_from_text(read_text(TG_FIXTURE_DIR "/cli/small_residual.tg"), {1, 28, 28},
                                             10, "small_residual.tg");
  tg::load(model, TG_FIXTURE_DIR "/cli/small_residual.safetensors");
  tg::OnnxModelInfo info{.input = {1, 28, 28},
                         .class_names = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"},
                         .mean = {0.1307f},
                         .std = {0.3081f},
                         .model_text = read_text(TG_FIXTURE_DIR "/cli/small_residual.tg"),
                         .model_source = "small_residual.tg"};
  for (const bool fold : {false, true}) {
    CAPTURE(fold);
    const std::string first = tg::export_onnx(model, info, {.opset = 13, .fold_bn = fold});
    tg::ImportedOnnx imported = tg::import_onnx(first, "small_residual.onnx");
    CHECK(imported.info.class_names == info.class_names);
    CHECK(imported.info.mean == info.mean);
    CHECK(imported.info.std == info.std);
    // Unfolded, the user's text comes back (comments, blocks and repeats as written); folded, the graph's.
    CHECK((imported.model_text == info.model_text) == !fold);
    const tg::Array x = formula_batch({1, 28, 28});
    const tg::Array want = eval_forward(model, x), got = eval_forward(imported.model, x);
    CHECK(xt::allclose(got, want, 1e-5, 1e-5));
    tg::OnnxModelInfo again = info;
    again.model_text = imported.model_text;
    const std::string second = tg::export_onnx(imported.model, again, {.opset = 13});
    onnx::ModelProto a, b;
    REQUIRE(a.ParseFromString(first));
    REQUIRE(b.ParseFromString(second));
    if (!fold) CHECK(a.graph().SerializeAsString() == b.graph().SerializeAsString());
    // Folded: the same nodes but for the batch norms (folded once already), and the same numbers.
    std::vector<std::string> ops_a, ops_b;
    for (const onnx::NodeProto& n : a.graph().node()) ops_a.push_back(n.op_type());
    for (const onnx::NodeProto& n : b.graph().node()) ops_b.push_back(n.op_type());
    CHECK(ops_a == ops_b);
  }
}

TEST_CASE("a tensor with a 0 among dimensions whose strides overflow is refused (fuzzer finding, UBSan)") {
  // fuzz_zero_dim_huge_strides.onnx: a reproducer of fuzz_onnx, not from the fixture generator. A conv weight
  // declared with a 0 dimension (so no elements, and no data to check) beside dimensions whose product
  // overflows a signed 64-bit stride in xtensor.
  const std::string path = kOnnxDir + "/fuzz_zero_dim_huge_strides.onnx";
  CHECK_THROWS_WITH_AS(tg::load_onnx(path), doctest::Contains("declares more elements than fit in memory"),
                       tg::Error);
}

TEST_CASE("import refuses each bad file of the fixtures with a tg::Error that says what is wrong") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"bad_two_inputs.onnx", "the graph has 2 inputs ('input', 'extra')"},
      {"bad_unsupported_op.onnx", "(Resize): no tapegrad layer for this op; supported: Conv,"},
      {"bad_conv_same_lower.onnx", "auto_pad=SAME_LOWER is not supported"},
      {"bad_dynamic_spatial.onnx",
       "has symbolic sizes (dynamic height or width); give them with --input CxHxW"},
      {"bad_conv_weight_shape.onnx",
       "its weight 'w' of shape [6, 2, 5, 5] with group 1 does not match its input "
       "of 1 channels"},
      {"bad_gemm_weight_shape.onnx", "has shape [10, 15], which does not take 16 input features"},
      {"bad_initializer_no_data.onnx", "declares [2, 1, 3, 3] (18 values) but holds 0"},
      {"bad_huge_tensor.onnx",
       "declares [37500000, 16] (600000000 values) but holds 4 (a declared size past 1 GB)"},
      {"bad_cycle.onnx", "the graph has a cycle through node"},
      {"bad_dangling_input.onnx", "reads 'nowhere', which no node, initializer or graph input defines"},
      {"bad_other_message.onnx", "not an ONNX model"},
      {"bad_truncated.onnx", "not an ONNX model (the bytes do not parse"},
      {"bad_empty.onnx", "empty file"},
  };
  REQUIRE(onnx_expected().at("bad").size() == cases.size());
  for (const auto& [file, message] : cases) {
    CAPTURE(file);
    REQUIRE(onnx_expected().at("bad").contains(file));
    const std::string path = kOnnxDir + "/" + file;
    CHECK_THROWS_WITH_AS(tg::load_onnx(path), doctest::Contains((path + ": ").c_str()), tg::Error);
    CHECK_THROWS_WITH_AS(tg::load_onnx(path), doctest::Contains(message.c_str()), tg::Error);
  }
  // Symbolic sizes are fine once given.
  const tg::ImportedOnnx given = tg::load_onnx(kOnnxDir + "/bad_dynamic_spatial.onnx", {1, 8, 8});
  CHECK(given.info.input == tg::Shape{1, 8, 8});
  CHECK_THROWS_WITH_AS(tg::load_onnx(kOnnxDir + "/lenet_op13.onnx", {1, 32, 32}),
                       doctest::Contains("--input [1, 32, 32] disagrees with the graph's input"), tg::Error);
  CHECK_THROWS_WITH_AS(tg::load_onnx(kOnnxDir + "/no_such_file.onnx"),
                       doctest::Contains("cannot open the file"), tg::Error);
}

TEST_CASE("import: a producer name with control characters stays a comment of a valid model file") {
  onnx::ModelProto m;
  REQUIRE(m.ParseFromString(read_text(kOnnxDir + "/lenet_op13.onnx")));
  m.set_producer_name("evil\x0c\nconv2d 1 1\n");  // found by fuzz_onnx: the comment broke the model file
  const tg::ImportedOnnx imported = tg::import_onnx(m.SerializeAsString(), "evil.onnx");
  CHECK(imported.model_text.starts_with("# imported from evil.onnx (evil??conv2d 1 1? "));
  const tg::Sequential rebuilt = tg::model_from_text(imported.model_text, {1, 28, 28}, 10);
  CHECK(rebuilt.num_parameters() == imported.model.num_parameters());
}
