// ONNX export (layers/onnx/onnx.hpp): the graph's structure as the exported bytes say it (parsed with
// libonnx's onnx::ModelProto), --fold-bn's arithmetic, custom layers (the error, a registered export
// function), the atomic write, and the outputs onnxruntime computes from the exported files against
// tapegrad's eval forward, for every built-in model and for model files using every layer line
// (tests/onnx_runtime.hpp; onnxruntime absent is a failure). Agreement: |onnxruntime - tapegrad| <= 1e-5 +
// 1e-5 * |tapegrad|, every logit.
// Why one file: the suites are by unit (docs/contributing.md), and these cases share the helpers above them.
#include <onnx/onnx_pb.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>

#include "layers/onnx/onnx.hpp"
#include "onnx_runtime.hpp"
#include "test_util.hpp"

namespace onnx_export_test {

using test_util::TempDir;

tg::OnnxModelInfo info_of(const tg::Shape& input) {
  tg::OnnxModelInfo info;
  info.input = input;
  return info;
}
tg::OnnxExportOptions options(int opset, bool fold_bn) {
  tg::OnnxExportOptions o;
  o.opset = opset;
  o.fold_bn = fold_bn;
  return o;
}

onnx::ModelProto parse(const std::string& bytes) {
  onnx::ModelProto m;
  REQUIRE(m.ParseFromString(bytes));
  return m;
}

std::vector<std::string> op_types(const onnx::ModelProto& m) {
  std::vector<std::string> ops;
  for (const onnx::NodeProto& n : m.graph().node()) ops.push_back(n.op_type());
  return ops;
}

const onnx::NodeProto& node_named(const onnx::ModelProto& m, const std::string& name) {
  for (const onnx::NodeProto& n : m.graph().node())
    if (n.name() == name) return n;
  std::string names;
  for (const onnx::NodeProto& n : m.graph().node()) names += n.name() + " ";
  FAIL("no node named '", name, "'; nodes: ", names);
  throw;  // unreachable: FAIL throws
}

const onnx::AttributeProto& attribute(const onnx::NodeProto& n, const std::string& name) {
  for (const onnx::AttributeProto& a : n.attribute())
    if (a.name() == name) return a;
  FAIL("node ", n.name(), " has no attribute ", name);
  throw;
}

std::vector<std::int64_t> ints(const onnx::NodeProto& n, const std::string& name) {
  const auto& a = attribute(n, name).ints();
  return {a.begin(), a.end()};
}

tg::Array initializer(const onnx::ModelProto& m, const std::string& name) {
  for (const onnx::TensorProto& t : m.graph().initializer()) {
    if (t.name() != name) continue;
    REQUIRE(t.data_type() == onnx::TensorProto::FLOAT);
    tg::Array a = tg::Array::from_shape(tg::Shape(t.dims().begin(), t.dims().end()));
    REQUIRE(t.raw_data().size() == a.size() * sizeof(float));
    std::memcpy(a.data(), t.raw_data().data(), t.raw_data().size());
    return a;
  }
  FAIL("no initializer named '", name, "'");
  throw;
}

std::map<std::string, std::string> metadata(const onnx::ModelProto& m) {
  std::map<std::string, std::string> out;
  for (const auto& e : m.metadata_props()) out[e.key()] = e.value();
  return out;
}

// Seeded random batch-norm state: gamma in [0.5, 1.5), beta and running_mean in [-0.5, 0.5), running_var in
// [0.5, 2): eval mode then computes something else than the identity (the defaults are 1, 0, 0, 1).
void randomize_batch_norms(tg::Module& model, std::uint64_t seed) {
  tg::Generator gen(seed);
  std::vector<std::string> bn_prefixes;
  auto state = model.named_state();
  for (auto& [name, t] : state) {
    const std::string suffix = ".running_mean";
    if (name.size() > suffix.size() && name.ends_with(suffix))
      bn_prefixes.push_back(name.substr(0, name.size() - suffix.size() + 1));
  }
  for (auto& [name, t] : state) {
    for (const std::string& p : bn_prefixes) {
      if (name.rfind(p, 0) != 0) continue;
      const std::string key = name.substr(p.size());
      const tg::Shape s = t.shape();
      if (key == "weight") t.value() = tg::rand_uniform(s, 0.5f, 1.5f, gen);
      if (key == "bias" || key == "running_mean") t.value() = tg::rand_uniform(s, -0.5f, 0.5f, gen);
      if (key == "running_var") t.value() = tg::rand_uniform(s, 0.5f, 2.f, gen);
    }
  }
}

tg::Array eval_forward(tg::Sequential& model, const tg::Array& x) {
  const bool was = model.is_training();
  model.eval();
  tg::NoGradGuard no_grad;
  tg::Array y = model(tg::Tensor(x)).value();
  model.train(was);
  return y;
}

// A model to compare in onnxruntime: exported at opsets 13 and 17, with and without fold_bn.
struct OrtModel {
  std::string name;
  tg::Sequential model;
  tg::Shape input;
  std::size_t batch;
};

// Exports each model four ways, runs all of them in one onnxruntime process, and checks every output against
// tapegrad's eval forward; prints the worst difference per model and variant.
void check_in_onnxruntime(std::vector<OrtModel>& models, std::uint64_t seed) {
  TempDir dir;
  std::vector<std::pair<std::string, tg::Array>> cases;
  std::vector<std::string> labels;
  std::vector<tg::Array> expected;
  tg::Generator gen(seed);
  for (OrtModel& m : models) {
    tg::Shape batch_shape{m.batch};
    batch_shape.insert(batch_shape.end(), m.input.begin(), m.input.end());
    const tg::Array x = tg::randn(batch_shape, gen);
    const tg::Array y = eval_forward(m.model, x);
    for (const int opset : {13, 17}) {
      for (const bool fold : {false, true}) {
        const std::string path =
            dir.file(m.name + "_" + std::to_string(opset) + (fold ? "_fold" : "") + ".onnx");
        tg::OnnxModelInfo info;
        info.input = m.input;
        info.model_source = m.name;
        tg::save_onnx(m.model, info, path, options(opset, fold));
        cases.emplace_back(path, x);
        labels.push_back(m.name + " opset " + std::to_string(opset) + (fold ? " fold-bn" : ""));
        expected.push_back(y);
      }
    }
  }
  const std::vector<tg::Array> got = test_util::run_onnxruntime_all(cases);
  REQUIRE(got.size() == expected.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    const test_util::Closeness c = test_util::closeness(got[i], expected[i]);
    std::printf("onnxruntime vs tapegrad: %-34s max |diff| %.3g, worst diff / (1e-5 + 1e-5 |y|) %.3f\n",
                labels[i].c_str(), c.max_abs_diff, c.worst_ratio);
    CHECK_MESSAGE(c.ok(), labels[i], ": onnxruntime's output differs from tapegrad's: max |diff| ",
                  c.max_abs_diff, ", ", c.worst_ratio, " times the tolerance (shapes ",
                  tg::shape_str(got[i].shape()), " and ", tg::shape_str(expected[i].shape()), ")");
  }
}

// ---- custom layers ----

// y = x * weight[c] + bias[c]: exported by the function below (registered in the tests that need it).
class OxeScaleShift : public tg::Module {
 public:
  explicit OxeScaleShift(std::size_t channels)
      : weight(tg::rand_uniform({channels, 1, 1}, 0.5f, 1.5f)),
        bias(tg::rand_uniform({channels, 1, 1}, -1.f, 1.f)) {
    register_parameter("weight", weight);
    register_parameter("bias", bias);
  }
  tg::Tensor forward(const tg::Tensor& x) override { return x * weight + bias; }
  tg::Shape output_shape(const tg::Shape& input) const override { return input; }
  std::string describe() const override { return "OxeScaleShift(" + std::to_string(weight.shape()[0]) + ")"; }
  std::string type_name() const override { return "OxeScaleShift"; }
  tg::Tensor weight, bias;
};

// y = x * x: never given an export function.
class OxeSquare : public tg::Module {
 public:
  tg::Tensor forward(const tg::Tensor& x) override { return x * x; }
  tg::Shape output_shape(const tg::Shape& input) const override { return input; }
  std::string describe() const override { return "OxeSquare(x * x)"; }
  std::string type_name() const override { return "OxeSquare"; }
};

void register_test_layers() {
  if (!tg::find_layer("oxe_scaleshift")) {
    tg::register_layer("oxe_scaleshift", [](tg::LayerArgs& args) -> std::unique_ptr<tg::Module> {
      return std::make_unique<OxeScaleShift>(args.input()[0]);
    });
  }
  if (!tg::find_layer("oxe_square"))
    tg::register_layer("oxe_square", [](tg::LayerArgs&) { return std::make_unique<OxeSquare>(); });
}

void register_scaleshift_export() {
  tg::register_onnx_export(
      "OxeScaleShift", [](const tg::Module& layer, tg::OnnxGraphBuilder& g, const std::string& x) {
        const auto& s = dynamic_cast<const OxeScaleShift&>(layer);
        const std::string scaled = g.add_node("Mul", {x, g.add_initializer("weight", s.weight.value())});
        return g.add_node("Add", {scaled, g.add_initializer("bias", s.bias.value())});
      });
}

const char* kStructureModel =
    "conv2d 4 4 padding=same            # 1: an even kernel, its extra pixel bottom/right\n"
    "batchnorm2d eps=0.001\n"
    "relu6\n"
    "residual                           # 4\n"
    "  conv2d 4 3 padding=1             # 5\n"
    "  relu\n"
    "end\n"
    "maxpool2d 3 stride=2 padding=1     # 8\n"
    "avgpool2d 3 stride=1 padding=1\n"
    "flatten\n"
    "dropout p=0.3\n"
    "linear classes                     # 12\n";

// The test cases live in the namespace too: in a unity build, its names stay out of the other files' way.

TEST_CASE(
    "onnx export: a model file becomes nodes named by path and line, with tapegrad's pads and attributes") {
  tg::manual_seed(1);
  tg::Sequential model = tg::model_from_text(kStructureModel, {1, 28, 28}, 10, "net.tg");
  tg::OnnxModelInfo info{
      .input = {1, 28, 28},
      .class_names = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine \"9\""},
      .mean = {0.1307f},
      .std = {0.3081f},
      .model_text = kStructureModel,
      .model_source = "net.tg"};
  const onnx::ModelProto m = parse(tg::export_onnx(model, info));

  CHECK(m.ir_version() == 7);
  REQUIRE(m.opset_import_size() == 1);
  CHECK(m.opset_import(0).domain().empty());
  CHECK(m.opset_import(0).version() == 13);
  CHECK(m.producer_name() == "tapegrad");
  CHECK(m.producer_version() == "0.1.0");
  // Dropout is gone; globalavgpool2d is not in this model
  CHECK(op_types(m) == std::vector<std::string>{"Conv", "BatchNormalization", "Clip", "Conv", "Relu", "Add",
                                                "MaxPool", "AveragePool", "Flatten", "Gemm"});

  // input [N, 1, 28, 28] with N symbolic, output logits [N, 10]
  REQUIRE(m.graph().input_size() == 1);
  const auto& in = m.graph().input(0);
  CHECK(in.name() == "input");
  CHECK(in.type().tensor_type().elem_type() == onnx::TensorProto::FLOAT);
  const auto& in_dims = in.type().tensor_type().shape().dim();
  REQUIRE(in_dims.size() == 4);
  CHECK(in_dims[0].dim_param() == "N");
  CHECK(in_dims[1].dim_value() == 1);
  CHECK(in_dims[3].dim_value() == 28);
  REQUIRE(m.graph().output_size() == 1);
  const auto& out = m.graph().output(0);
  CHECK(out.name() == "logits");
  const auto& out_dims = out.type().tensor_type().shape().dim();
  REQUIRE(out_dims.size() == 2);
  CHECK(out_dims[0].dim_param() == "N");
  CHECK(out_dims[1].dim_value() == 10);
  CHECK(m.graph().node(m.graph().node_size() - 1).output(0) == "logits");

  // conv2d 4 4 padding=same: span 4, 1 pixel top/left and 2 bottom/right ([top, left, bottom, right])
  const onnx::NodeProto& conv = node_named(m, "0.conv2d@net.tg:1");
  CHECK(conv.op_type() == "Conv");
  CHECK(ints(conv, "pads") == std::vector<std::int64_t>{1, 1, 2, 2});
  CHECK(ints(conv, "kernel_shape") == std::vector<std::int64_t>{4, 4});
  CHECK(ints(conv, "strides") == std::vector<std::int64_t>{1, 1});
  CHECK(ints(conv, "dilations") == std::vector<std::int64_t>{1, 1});
  CHECK(attribute(conv, "group").i() == 1);
  CHECK(std::vector<std::string>(conv.input().begin(), conv.input().end()) ==
        std::vector<std::string>{"input", "0.weight", "0.bias"});
  CHECK(initializer(m, "0.weight") == model.at<tg::Conv2D>(0).weight.value());

  const onnx::NodeProto& bn = node_named(m, "1.batchnorm2d@net.tg:2");
  CHECK(attribute(bn, "epsilon").f() == doctest::Approx(0.001f));
  CHECK(std::vector<std::string>(bn.input().begin() + 1, bn.input().end()) ==
        std::vector<std::string>{"1.weight", "1.bias", "1.running_mean", "1.running_var"});

  // relu6: Clip with its bounds as scalar inputs (opset 11 and later)
  const onnx::NodeProto& clip = node_named(m, "2.relu6@net.tg:3");
  REQUIRE(clip.input_size() == 3);
  const tg::Array lo = initializer(m, clip.input(1)), hi = initializer(m, clip.input(2));
  CHECK(lo.dimension() == 0);
  CHECK(lo() == 0.f);
  CHECK(hi() == 6.f);

  // the residual block: its body's nodes by path and line, then Add(body, the block's input)
  const onnx::NodeProto& body_conv = node_named(m, "3.body.0.conv2d@net.tg:5");
  CHECK(body_conv.input(0) == clip.output(0));
  CHECK(body_conv.input(1) == "3.body.0.weight");
  const onnx::NodeProto& body_relu = node_named(m, "3.body.1.relu@net.tg:6");
  const onnx::NodeProto& add = node_named(m, "3.residual@net.tg:4");
  CHECK(add.op_type() == "Add");
  CHECK(std::vector<std::string>(add.input().begin(), add.input().end()) ==
        std::vector<std::string>{body_relu.output(0), clip.output(0)});

  const onnx::NodeProto& maxpool = node_named(m, "4.maxpool2d@net.tg:8");
  CHECK(ints(maxpool, "pads") == std::vector<std::int64_t>{1, 1, 1, 1});
  CHECK(ints(maxpool, "strides") == std::vector<std::int64_t>{2, 2});
  CHECK(ints(maxpool, "kernel_shape") == std::vector<std::int64_t>{3, 3});
  const onnx::NodeProto& avgpool = node_named(m, "5.avgpool2d@net.tg:9");
  CHECK(attribute(avgpool, "count_include_pad").i() == 1);
  CHECK(ints(avgpool, "strides") == std::vector<std::int64_t>{1, 1});
  CHECK(attribute(node_named(m, "6.flatten@net.tg:10"), "axis").i() == 1);

  const onnx::NodeProto& gemm = node_named(m, "8.linear@net.tg:12");
  CHECK(attribute(gemm, "transB").i() == 1);
  CHECK(std::vector<std::string>(gemm.input().begin() + 1, gemm.input().end()) ==
        std::vector<std::string>{"8.weight", "8.bias"});
  CHECK(initializer(m, "8.weight").shape() == tg::Shape{10, 4 * 14 * 14});

  const auto meta = metadata(m);
  CHECK(meta.at("tapegrad.mean") == "[0.1307]");
  CHECK(meta.at("tapegrad.std") == "[0.3081]");
  CHECK(nlohmann::json::parse(meta.at("tapegrad.classes")) == nlohmann::json(info.class_names));
  CHECK(meta.at("tapegrad.model") == kStructureModel);
  CHECK(meta.at("tapegrad.source") == "net.tg");
  CHECK(meta.at("tapegrad.input") == "1x28x28");
}

TEST_CASE("onnx export: opset 17 is IR version 8, a nested Sequential recurses, other opsets are refused") {
  tg::manual_seed(2);
  tg::Sequential inner{tg::ReLU(), tg::GlobalAvgPool2D()};
  tg::Sequential model(tg::Conv2D(3, 4, 3), tg::Softmax());
  model.add(std::make_unique<tg::Sequential>(std::move(inner)));
  const tg::OnnxModelInfo info = info_of({3, 8, 8});
  // no model file: names are paths and line names without '@'
  const onnx::ModelProto m17 = parse(tg::export_onnx(model, info, options(17, false)));
  CHECK(m17.ir_version() == 8);
  CHECK(m17.opset_import(0).version() == 17);
  CHECK(op_types(m17) == std::vector<std::string>{"Conv", "Softmax", "Relu", "GlobalAveragePool", "Flatten"});
  CHECK(node_named(m17, "0.conv2d").op_type() == "Conv");
  CHECK(attribute(node_named(m17, "1.softmax"), "axis").i() == -1);
  CHECK(node_named(m17, "2.0.relu").op_type() == "Relu");
  CHECK(node_named(m17, "2.1.globalavgpool2d").op_type() == "GlobalAveragePool");
  CHECK(node_named(m17, "2.1.globalavgpool2d#2").op_type() == "Flatten");
  CHECK(metadata(m17).at("tapegrad.input") == "3x8x8");
  CHECK(metadata(m17).count("tapegrad.classes") == 0);  // absent fields are not written

  // a model that is the identity in eval mode: one Identity node from input to logits
  tg::Sequential only_dropout{tg::Dropout(0.5f)};
  const onnx::ModelProto identity = parse(tg::export_onnx(only_dropout, info_of({5})));
  CHECK(op_types(identity) == std::vector<std::string>{"Identity"});
  CHECK(identity.graph().node(0).input(0) == "input");
  CHECK(identity.graph().node(0).output(0) == "logits");

  for (const int opset : {12, 14, 18}) {
    CHECK_THROWS_WITH_AS(tg::export_onnx(model, info, options(opset, false)),
                         doctest::Contains(("opset " + std::to_string(opset) + " is not supported").c_str()),
                         tg::Error);
  }
  CHECK_THROWS_WITH_AS(tg::export_onnx(model, {}), doctest::Contains("input shape is unknown"), tg::Error);
  CHECK_THROWS_WITH_AS(tg::export_onnx(model, info_of({1, 8, 8})),
                       doctest::Contains("expected input [3, H, W]"), tg::Error);
}

TEST_CASE("onnx export: fold_bn folds a batch norm into the conv before it, and only there") {
  tg::manual_seed(3);
  const char* text =
      "conv2d 3 3 bias=false\nbatchnorm2d eps=0.01\nrelu\nbatchnorm2d\nconv2d 2 1\nbatchnorm2d\nflatten\n"
      "linear classes\n";
  tg::Sequential model = tg::model_from_text(text, {2, 6, 6}, 4, "fold.tg");
  randomize_batch_norms(model, 33);
  const onnx::ModelProto m = parse(tg::export_onnx(model, info_of({2, 6, 6}), options(13, true)));
  // the batch norm after relu stays; the two after a conv are gone into it
  CHECK(op_types(m) ==
        std::vector<std::string>{"Conv", "Relu", "BatchNormalization", "Conv", "Flatten", "Gemm"});
  CHECK(node_named(m, "0.conv2d@fold.tg:1").input(2) == "0.bias");  // a bias the conv did not have

  // w' = w * gamma / sqrt(var + eps), b' = (b - mean) * gamma / sqrt(var + eps) + beta, per output channel
  for (const std::size_t i : {std::size_t{0}, std::size_t{4}}) {
    const auto& conv = model.at<tg::Conv2D>(i);
    const auto& bn = model.at<tg::BatchNorm2d>(i + 1);
    const tg::Array w = initializer(m, std::to_string(i) + ".weight");
    const tg::Array b = initializer(m, std::to_string(i) + ".bias");
    REQUIRE(w.shape() == conv.weight.shape());
    const std::size_t per = w.size() / w.shape()[0];
    for (std::size_t c = 0; c < w.shape()[0]; ++c) {
      const double s = bn.weight.value()(c) / std::sqrt(bn.running_var.value()(c) + double{bn.options.eps});
      CHECK(std::abs(s - 1.0) > 0.01);  // the fold changes something
      for (std::size_t k = 0; k < per; ++k)
        CHECK(w.data()[c * per + k] ==
              doctest::Approx(conv.weight.value().data()[c * per + k] * s).epsilon(1e-6));
      const double bias = conv.bias.defined() ? conv.bias.value()(c) : 0.0;
      CHECK(b(c) ==
            doctest::Approx((bias - bn.running_mean.value()(c)) * s + bn.bias.value()(c)).epsilon(1e-6));
    }
  }
  // unfolded, the same model keeps its three batch norms and its conv without bias
  const onnx::ModelProto plain = parse(tg::export_onnx(model, info_of({2, 6, 6})));
  CHECK(op_types(plain) == std::vector<std::string>{"Conv", "BatchNormalization", "Relu",
                                                    "BatchNormalization", "Conv", "BatchNormalization",
                                                    "Flatten", "Gemm"});
  CHECK(node_named(plain, "0.conv2d@fold.tg:1").input_size() == 2);
}

TEST_CASE(
    "onnx export: a layer without an ONNX form is an error naming its path, line and the way to give one") {
  register_test_layers();
  const char* text = "conv2d 4 3\nresidual\n  oxe_square\n  relu\nend\nflatten\nlinear classes\n";
  tg::Sequential model = tg::model_from_text(text, {1, 8, 8}, 3, "sq.tg");
  model.train();
  const auto message = [&] {
    try {
      tg::export_onnx(model, info_of({1, 8, 8}));
    } catch (const tg::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  }();
  CHECK(message.find("layer 1.body.0 OxeSquare(x * x) (sq.tg:3 oxe_square) has no ONNX form") !=
        std::string::npos);
  CHECK(message.find("tg::register_onnx_export(\"OxeSquare\", function)") != std::string::npos);
  CHECK(message.find("docs/extending.md") != std::string::npos);
  CHECK(model.is_training());  // the mode is restored after an error too
}

TEST_CASE("onnx export: a registered export function gives a custom layer its ONNX form") {
  register_test_layers();
  register_scaleshift_export();
  tg::manual_seed(5);
  const char* text = "conv2d 3 3 padding=1\noxe_scaleshift\nrelu\nflatten\nlinear classes\n";
  tg::Sequential model = tg::model_from_text(text, {2, 6, 6}, 4, "mine.tg");
  const std::string bytes = tg::export_onnx(model, info_of({2, 6, 6}));
  const onnx::ModelProto m = parse(bytes);
  CHECK(op_types(m) == std::vector<std::string>{"Conv", "Mul", "Add", "Relu", "Flatten", "Gemm"});
  CHECK(node_named(m, "1.oxe_scaleshift@mine.tg:2").op_type() == "Mul");
  CHECK(node_named(m, "1.oxe_scaleshift@mine.tg:2#2").op_type() == "Add");
  CHECK(initializer(m, "1.weight") == model.at<OxeScaleShift>(1).weight.value());

  TempDir dir;
  const std::string path = dir.file("mine.onnx");
  tg::save_onnx(model, info_of({2, 6, 6}), path);
  tg::Generator gen(55);
  const tg::Array x = tg::randn({3, 2, 6, 6}, gen);
  const test_util::Closeness c =
      test_util::closeness(test_util::run_onnxruntime(path, x), eval_forward(model, x));
  CHECK_MESSAGE(c.ok(), "max |diff| ", c.max_abs_diff);

  // an export function that returns no tensor of the graph, or adds an initializer twice
  tg::register_onnx_export("OxeScaleShift", [](const tg::Module&, tg::OnnxGraphBuilder&, const std::string&) {
    return std::string("nowhere");
  });
  CHECK_THROWS_WITH_AS(tg::export_onnx(model, info_of({2, 6, 6})),
                       doctest::Contains("layer 1 OxeScaleShift(3) (mine.tg:2 oxe_scaleshift): its export "
                                         "function returned 'nowhere', which is no tensor of the graph"),
                       tg::Error);
  tg::register_onnx_export(
      "OxeScaleShift", [](const tg::Module& l, tg::OnnxGraphBuilder& g, const std::string& x) {
        g.add_initializer("weight", dynamic_cast<const OxeScaleShift&>(l).weight.value());
        g.add_initializer("weight", dynamic_cast<const OxeScaleShift&>(l).weight.value());
        return x;
      });
  CHECK_THROWS_WITH_AS(tg::export_onnx(model, info_of({2, 6, 6})),
                       doctest::Contains("the tensor name '1.weight' is used twice"), tg::Error);
  register_scaleshift_export();
}

TEST_CASE("onnx export: save_onnx writes atomically, and a failing export leaves no file behind") {
  register_test_layers();
  tg::Sequential good = tg::model_from_text("conv2d 2 3\nflatten\nlinear classes\n", {1, 6, 6}, 2);
  tg::Sequential bad = tg::model_from_text("conv2d 2 3\noxe_square\nflatten\nlinear classes\n", {1, 6, 6}, 2);
  TempDir dir;
  const std::string path = dir.file("model.onnx");
  const tg::OnnxExportReport report = tg::save_onnx(good, info_of({1, 6, 6}), path);
  const std::string before = test_util::read_text(path);
  CHECK(before.size() == report.bytes);
  CHECK(report.nodes == 3);
  CHECK(report.initializers == 4);
  CHECK(parse(before).graph().node_size() == 3);

  CHECK_THROWS_AS(tg::save_onnx(bad, info_of({1, 6, 6}), path), tg::Error);
  CHECK(test_util::read_text(path) == before);  // the old file, whole
  CHECK_THROWS_AS(tg::save_onnx(bad, info_of({1, 6, 6}), dir.file("new.onnx")), tg::Error);
  CHECK_THROWS_AS(tg::save_onnx(good, info_of({1, 6, 6}), path, options(11, false)), tg::Error);
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir.path))
    files.push_back(e.path().filename().string());
  CHECK(files == std::vector<std::string>{"model.onnx"});  // no new.onnx, no temp file
  CHECK(test_util::read_text(path) == before);
  CHECK_THROWS_WITH_AS(tg::save_onnx(good, info_of({1, 6, 6}), dir.file("no/such/dir/m.onnx")),
                       doctest::Contains("no/such/dir/m.onnx"), tg::Error);
}

TEST_CASE("onnx export: the model's train or eval mode is what it was") {
  tg::Sequential model =
      tg::model_from_text("conv2d 2 3\nbatchnorm2d\ndropout\nflatten\nlinear classes\n", {1, 6, 6}, 2);
  model.train();
  tg::export_onnx(model, info_of({1, 6, 6}));
  CHECK(model.is_training());
  CHECK(model[1].is_training());
  model.eval();
  tg::export_onnx(model, info_of({1, 6, 6}));
  CHECK_FALSE(model.is_training());
  CHECK_FALSE(model[2].is_training());
  // mixed: the model training with its batch norm frozen in eval mode
  model.train();
  model[1].eval();
  tg::export_onnx(model, info_of({1, 6, 6}));
  CHECK(model.is_training());
  CHECK_FALSE(model[1].is_training());
  CHECK(model[2].is_training());
}

TEST_CASE("onnx export: every built-in model gives onnxruntime's outputs equal to tapegrad's") {
  std::vector<OrtModel> models;
  const std::vector<std::pair<std::string, tg::Shape>> builtins{
      {"lenet", {1, 28, 28}},    {"convnet", {1, 28, 28}},   {"cifarnet", {3, 32, 32}},
      {"resnet20", {3, 32, 32}}, {"mobilenet", {3, 32, 32}}, {"mobilenetv2", {3, 32, 32}}};
  std::uint64_t seed = 100;
  for (const auto& [name, input] : builtins) {
    tg::manual_seed(++seed);
    tg::Sequential model = tg::model_from_file(std::string(TG_MODELS_DIR) + "/" + name + ".tg", input, 10);
    randomize_batch_norms(model, seed);
    models.push_back({name, std::move(model), input, name == "convnet" || name == "mobilenetv2" ? 2u : 3u});
  }
  check_in_onnxruntime(models, 7);
}

TEST_CASE("onnx export: model files using every layer line give onnxruntime's outputs equal to tapegrad's") {
  // every conv and pooling variant, on 3x16x16
  const char* kLines =
      "conv2d 8 4 padding=same             # even kernel: 1 pixel top/left, 2 bottom/right\n"
      "batchnorm2d eps=0.01\n"
      "leakyrelu slope=0.1\n"
      "conv2d 8 3 padding=same dilation=2 groups=4 bias=false\n"
      "batchnorm2d\n"
      "relu6\n"
      "conv2d 8 2 padding=same groups=8    # depthwise, even kernel\n"
      "avgpool2d 3 stride=2 padding=1      # 16 -> 8, padded zeros in the divisor\n"
      "maxpool2d 3 stride=2 padding=1      # 8 -> 4\n"
      "conv2d 6 3x1 stride=2x1 padding=1x0 # [6, 2, 4]\n"
      "avgpool2d 1x2 stride=1              # [6, 2, 3]\n"
      "maxpool2d 2 stride=1                # [6, 1, 2]\n"
      "flatten\n"
      "dropout p=0.3\n"
      "linear 20\n"
      "linear classes bias=false\n";
  // the other activations, softmax on images (along W) and on features
  const char* kActivations =
      "conv2d 4 3 padding=1\n"
      "tanh\n"
      "conv2d 4 3 padding=1\n"
      "sigmoid\n"
      "conv2d 4 1\n"
      "softmax\n"
      "flatten\n"
      "linear 16\n"
      "logsoftmax\n"
      "linear classes\n";
  // residual blocks with and without a shortcut, nested, repeated; global average pooling, logsoftmax
  const char* kBlocks =
      "conv2d 8 3 padding=1 bias=false\n"
      "batchnorm2d\n"
      "relu\n"
      "repeat 2\n"
      "  residual\n"
      "    conv2d 8 3 padding=1 bias=false\n"
      "    batchnorm2d\n"
      "    relu\n"
      "    residual\n"
      "      conv2d 8 1\n"
      "      batchnorm2d\n"
      "    end\n"
      "    conv2d in 3 padding=1 groups=in\n"
      "  end\n"
      "  relu\n"
      "end\n"
      "residual\n"
      "  conv2d 16 3 stride=2 padding=1 bias=false\n"
      "  batchnorm2d\n"
      "  dropout p=0.5\n"
      "shortcut\n"
      "  avgpool2d 2\n"
      "  conv2d 16 1 bias=false\n"
      "  batchnorm2d\n"
      "end\n"
      "relu6\n"
      "globalavgpool2d\n"
      "flatten\n"
      "linear classes\n"
      "logsoftmax\n";
  std::vector<OrtModel> models;
  tg::manual_seed(11);
  models.push_back({"lines.tg", tg::model_from_text(kLines, {3, 16, 16}, 5, "lines.tg"), {3, 16, 16}, 3});
  tg::manual_seed(15);
  models.push_back(
      {"activations.tg", tg::model_from_text(kActivations, {3, 8, 8}, 5, "activations.tg"), {3, 8, 8}, 3});
  tg::manual_seed(12);
  models.push_back({"blocks.tg", tg::model_from_text(kBlocks, {3, 16, 16}, 7, "blocks.tg"), {3, 16, 16}, 3});
  // built in C++: a nested Sequential inside a residual body; and a model of features [F], not images
  tg::manual_seed(13);
  tg::Sequential nested_body;
  nested_body.add(tg::Conv2D(4, 4, 3, {.padding = {1, 1}}));
  nested_body.add(std::make_unique<tg::Sequential>(tg::Sequential(tg::BatchNorm2d(4), tg::Sigmoid())));
  tg::Sequential nested(tg::Conv2D(2, 4, 3), tg::Residual(std::move(nested_body)), tg::Flatten(),
                        tg::Linear(4 * 6 * 6, 3), tg::LogSoftmax());
  models.push_back({"nested (C++)", std::move(nested), {2, 8, 8}, 2});
  tg::manual_seed(14);
  models.push_back({"features (C++)",
                    tg::Sequential(tg::Linear(12, 8), tg::Tanh(), tg::Dropout(0.2f), tg::Linear(8, 3, false)),
                    {12},
                    3});
  for (std::size_t i = 0; i < models.size(); ++i) randomize_batch_norms(models[i].model, 200 + i);
  check_in_onnxruntime(models, 8);
}

}  // namespace onnx_export_test
