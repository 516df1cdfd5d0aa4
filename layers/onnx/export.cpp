// Why one file: the builder, the layers' forms and the walk share one graph state, and each is a screen;
// split, they would need a header of internals that nothing else includes.
// ONNX export (layers/onnx/onnx.hpp): a Sequential in eval mode walked layer by layer into an
// onnx::GraphProto. Every layer, built-in or a user's, goes through the same OnnxGraphBuilder a registered
// export function gets; the built-in ones are export_builtin's. Sequential and Residual recurse.
#include <cctype>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/io/atomic_file.hpp"
#include "layers/activations.hpp"
#include "layers/batchnorm.hpp"
#include "layers/conv2d.hpp"
#include "layers/linear.hpp"
#include "layers/onnx/onnx.hpp"
#include "layers/onnx/onnx_proto.hpp"
#include "layers/pooling.hpp"
#include "layers/registry.hpp"
#include "layers/residual.hpp"

namespace tg {

// A named namespace, not an anonymous one: the library is a unity build with import.cpp.
namespace onnx_export_detail {

using Attributes = std::vector<std::pair<std::string, OnnxAttribute>>;
using Ints = std::vector<std::int64_t>;

std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}
std::map<std::string, OnnxExportFunction>& user_exports() {
  static std::map<std::string, OnnxExportFunction> m;
  return m;
}

std::string join_path(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

// The layer's name in node names: its model-file line's first word ("conv2d"), else the first word of the
// line it prints (to_line()), else its type name in lower case.
std::string line_name(const Module& m) {
  std::string line = m.source_line().empty() ? m.to_line() : m.source_line();
  if (line.empty()) {
    line = m.type_name();
    for (char& c : line) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return line.substr(0, line.find(' '));
}

// "layer 3.body.0 PReLU(initial slope 0.25) (net.tg:12 prelu slope=0.25)"
std::string layer_text(const Module& m, const std::string& path) {
  std::string s = "layer " + (path.empty() ? std::string("(the model)") : path) + " " + m.describe();
  if (!m.source().empty()) s += " (" + m.source() + ")";
  return s;
}

void set_attribute(onnx::AttributeProto& a, const std::string& name, const OnnxAttribute& value) {
  a.set_name(name);
  if (const auto* i = std::get_if<std::int64_t>(&value)) {
    a.set_type(onnx::AttributeProto::INT), a.set_i(*i);
  } else if (const auto* f = std::get_if<float>(&value)) {
    a.set_type(onnx::AttributeProto::FLOAT), a.set_f(*f);
  } else if (const auto* is = std::get_if<Ints>(&value)) {
    a.set_type(onnx::AttributeProto::INTS);
    for (const std::int64_t v : *is) a.add_ints(v);
  } else if (const auto* fs = std::get_if<std::vector<float>>(&value)) {
    a.set_type(onnx::AttributeProto::FLOATS);
    for (const float v : *fs) a.add_floats(v);
  } else {
    a.set_type(onnx::AttributeProto::STRING), a.set_s(std::get<std::string>(value));
  }
}

// The graph and the names used in it so far (node, tensor and initializer names are each unique).
struct GraphState {
  onnx::GraphProto* graph;
  int opset;
  bool fold_bn;
  std::set<std::string> tensor_names, node_names;

  // `name`, or `name#2`, `name#3`, ... when it is taken.
  static std::string unique(std::set<std::string>& used, const std::string& name) {
    std::string candidate = name;
    for (int k = 2; used.count(candidate); ++k) candidate = name + "#" + std::to_string(k);
    used.insert(candidate);
    return candidate;
  }
};

// The OnnxGraphBuilder of one layer: names what it adds after the layer.
class LayerBuilder : public OnnxGraphBuilder {
 public:
  LayerBuilder(GraphState& state, const Module& layer, std::string path, Shape input_shape)
      : state_(state), layer_(layer), path_(std::move(path)), input_shape_(std::move(input_shape)) {
    base_ = join_path(path_, line_name(layer));
    location_ = layer.source_location().empty() ? "" : "@" + layer.source_location();
  }

  const std::string& path() const override { return path_; }
  const Shape& input_shape() const override { return input_shape_; }
  int opset() const override { return state_.opset; }

  std::string add_initializer(const std::string& name, const Array& value) override {
    onnx_detail::set_tensor(*state_.graph->add_initializer(), initializer_name(name), value);
    return state_.graph->initializer(state_.graph->initializer_size() - 1).name();
  }
  std::string add_int64_initializer(const std::string& name, const Ints& values) override {
    onnx::TensorProto& t = *state_.graph->add_initializer();
    t.set_name(initializer_name(name));
    t.set_data_type(onnx::TensorProto::INT64);
    t.add_dims(static_cast<std::int64_t>(values.size()));
    for (const std::int64_t v : values) t.add_int64_data(v);
    return t.name();
  }
  std::string add_node(const std::string& op_type, const std::vector<std::string>& inputs,
                       const Attributes& attributes) override {
    onnx::NodeProto& node = *state_.graph->add_node();
    node.set_op_type(op_type);
    node.set_name(GraphState::unique(state_.node_names, base_ + location_));
    for (const std::string& in : inputs) node.add_input(in);
    node.add_output(GraphState::unique(state_.tensor_names, base_));
    for (const auto& [name, value] : attributes) set_attribute(*node.add_attribute(), name, value);
    return node.output(0);
  }

 private:
  std::string initializer_name(const std::string& name) {
    const std::string full = join_path(path_, name);
    if (!state_.tensor_names.insert(full).second)
      fail("ONNX export of ", layer_text(layer_, path_), ": the tensor name '", full,
           "' is used twice (an export function added the initializer '", name, "' twice?)");
    return full;
  }

  GraphState& state_;
  const Module& layer_;
  std::string path_, base_, location_;
  Shape input_shape_;
};

Ints pair_of(const std::array<int, 2>& a) { return {a[0], a[1]}; }

// Conv with explicit pads [top, left, bottom, right]: "same" written out as tapegrad computes it (an even
// span's extra pixel bottom/right, core/ops/conv2d.cpp). `weight` and `bias` (maybe empty) are the values to
// write (folded with a batch norm or not).
std::string export_conv(const Conv2D& conv, OnnxGraphBuilder& g, const std::string& x, const Array& weight,
                        const Array* bias) {
  const Conv2dOptions& o = conv.options;
  const Ints kernel{conv.kernel.h, conv.kernel.w};
  Ints pads;
  if (o.padding.same) {
    const std::int64_t span_h = std::int64_t{o.dilation[0]} * (conv.kernel.h - 1) + 1;
    const std::int64_t span_w = std::int64_t{o.dilation[1]} * (conv.kernel.w - 1) + 1;
    const std::int64_t top = (span_h - 1) / 2, left = (span_w - 1) / 2;
    pads = {top, left, span_h - 1 - top, span_w - 1 - left};
  } else {
    pads = {o.padding.h, o.padding.w, o.padding.h, o.padding.w};
  }
  std::vector<std::string> inputs{x, g.add_initializer("weight", weight)};
  if (bias) inputs.push_back(g.add_initializer("bias", *bias));
  return g.add_node("Conv", inputs,
                    {{"kernel_shape", kernel},
                     {"strides", pair_of(o.stride)},
                     {"pads", pads},
                     {"dilations", pair_of(o.dilation)},
                     {"group", std::int64_t{o.groups}}});
}

// Pool strides: 0 means the kernel (PyTorch's default).
Ints pool_strides(const std::array<int, 2>& kernel, const std::array<int, 2>& stride) {
  return {stride[0] == 0 ? kernel[0] : stride[0], stride[1] == 0 ? kernel[1] : stride[1]};
}
Ints pool_pads(const std::array<int, 2>& p) { return {p[0], p[1], p[0], p[1]}; }

template <class T>
const T* as(const Module& m) {
  return dynamic_cast<const T*>(&m);
}

// The built-in layers' ONNX forms, in eval mode.
std::string export_builtin(const Module& m, OnnxGraphBuilder& g, const std::string& x, bool& known) {
  known = true;
  if (const auto* conv = as<Conv2D>(m)) {
    return export_conv(*conv, g, x, conv->weight.value(),
                       conv->bias.defined() ? &conv->bias.value() : nullptr);
  }
  if (const auto* pool = as<MaxPool2D>(m)) {
    const MaxPool2dOptions& o = pool->options;
    return g.add_node("MaxPool", {x},
                      {{"kernel_shape", pair_of(o.kernel)},
                       {"strides", pool_strides(o.kernel, o.stride)},
                       {"pads", pool_pads(o.padding)}});
  }
  if (const auto* pool = as<AvgPool2D>(m)) {
    // Padded cells are zeros that count in the divisor: the divisor is always kh * kw
    // (core/kernels/avg_pool2d.hpp), ONNX's count_include_pad=1.
    const AvgPool2dOptions& o = pool->options;
    return g.add_node("AveragePool", {x},
                      {{"kernel_shape", pair_of(o.kernel)},
                       {"strides", pool_strides(o.kernel, o.stride)},
                       {"pads", pool_pads(o.padding)},
                       {"count_include_pad", std::int64_t{1}}});
  }
  if (as<GlobalAvgPool2D>(m)) {
    return g.add_node("Flatten", {g.add_node("GlobalAveragePool", {x})}, {{"axis", std::int64_t{1}}});
  }
  if (as<Flatten>(m)) return g.add_node("Flatten", {x}, {{"axis", std::int64_t{1}}});
  if (const auto* bn = as<BatchNorm2d>(m)) {
    // Eval mode: the running statistics; momentum plays no part.
    const std::string scale = g.add_initializer("weight", bn->weight.value());
    const std::string bias = g.add_initializer("bias", bn->bias.value());
    const std::string mean = g.add_initializer("running_mean", bn->running_mean.value());
    const std::string var = g.add_initializer("running_var", bn->running_var.value());
    return g.add_node("BatchNormalization", {x, scale, bias, mean, var}, {{"epsilon", bn->options.eps}});
  }
  if (const auto* linear = as<Linear>(m)) {
    std::vector<std::string> inputs{x, g.add_initializer("weight", linear->weight.value())};
    if (linear->bias.defined()) inputs.push_back(g.add_initializer("bias", linear->bias.value()));
    return g.add_node("Gemm", inputs, {{"transB", std::int64_t{1}}});  // x W^T + b
  }
  if (as<ReLU>(m)) return g.add_node("Relu", {x});
  if (as<ReLU6>(m)) {
    // Clip's bounds are inputs since opset 11, scalars of the input's type.
    const std::string lo = g.add_initializer("min", Array(Shape{}, 0.f));
    const std::string hi = g.add_initializer("max", Array(Shape{}, 6.f));
    return g.add_node("Clip", {x, lo, hi});
  }
  if (as<Sigmoid>(m)) return g.add_node("Sigmoid", {x});
  if (as<Tanh>(m)) return g.add_node("Tanh", {x});
  // Opset 13's Softmax and LogSoftmax act along one axis, as tapegrad's do (the last).
  if (as<Softmax>(m)) return g.add_node("Softmax", {x}, {{"axis", std::int64_t{-1}}});
  if (as<LogSoftmax>(m)) return g.add_node("LogSoftmax", {x}, {{"axis", std::int64_t{-1}}});
  if (const auto* leaky = as<LeakyReLU>(m))
    return g.add_node("LeakyRelu", {x}, {{"alpha", leaky->negative_slope}});
  if (as<Dropout>(m)) return x;  // the identity in eval mode
  known = false;
  return {};
}

// A conv followed by a batch norm as one Conv: with s = gamma / sqrt(var + eps) per output channel,
// w' = w * s and b' = (b - mean) * s + beta (in double, rounded once).
std::string export_conv_bn(const Conv2D& conv, const BatchNorm2d& bn, OnnxGraphBuilder& g,
                           const std::string& x) {
  const Array& w = conv.weight.value();
  const std::size_t out = w.shape()[0], per_channel = w.size() / out;
  if (bn.channels != out)
    fail("ONNX export: ", layer_text(bn, g.path()), " has ", bn.channels, " channels, its conv ", out);
  Array folded_w = Array::from_shape(w.shape());
  Array folded_b = Array::from_shape({out});
  for (std::size_t c = 0; c < out; ++c) {
    const double s =
        double{bn.weight.value()(c)} / std::sqrt(double{bn.running_var.value()(c)} + bn.options.eps);
    for (std::size_t k = 0; k < per_channel; ++k)
      folded_w.data()[c * per_channel + k] = static_cast<float>(w.data()[c * per_channel + k] * s);
    const double b = conv.bias.defined() ? double{conv.bias.value()(c)} : 0.0;
    folded_b(c) = static_cast<float>((b - bn.running_mean.value()(c)) * s + bn.bias.value()(c));
  }
  return export_conv(conv, g, x, folded_w, &folded_b);
}

struct Exporter {
  GraphState state;

  std::string module(const Module& m, const std::string& path, const Shape& shape, const std::string& x) {
    OnnxExportFunction user;
    {
      std::lock_guard lock(registry_mutex());
      const auto it = user_exports().find(m.type_name());
      if (it != user_exports().end()) user = it->second;
    }
    if (user) {
      LayerBuilder builder(state, m, path, shape);
      std::string out;
      try {
        out = user(m, builder, x);
      } catch (const std::exception& e) {
        fail("ONNX export of ", layer_text(m, path), ": ", e.what());
      }
      if (!state.tensor_names.count(out))
        fail("ONNX export of ", layer_text(m, path), ": its export function returned '", out,
             "', which is no tensor of the graph (return the output of the last add_node, or the input)");
      return out;
    }
    if (const auto* seq = as<Sequential>(m)) return sequential(*seq, path, shape, x);
    if (const auto* res = as<Residual>(m)) {
      const std::string body = sequential(res->body(), join_path(path, "body"), shape, x);
      const std::string skip =
          res->has_shortcut() ? sequential(res->shortcut(), join_path(path, "shortcut"), shape, x) : x;
      LayerBuilder builder(state, m, path, shape);
      return static_cast<OnnxGraphBuilder&>(builder).add_node("Add", {body, skip});
    }
    LayerBuilder builder(state, m, path, shape);
    bool known = false;
    std::string out = export_builtin(m, builder, x, known);
    if (!known) {
      fail("ONNX export: ", layer_text(m, path), " has no ONNX form (a ", m.type_name(),
           " is not a built-in layer); give it one with tg::register_onnx_export(\"", m.type_name(),
           "\", function) before exporting (layers/onnx/onnx.hpp, docs/extending.md)");
    }
    return out;
  }

  std::string sequential(const Sequential& seq, const std::string& prefix, Shape shape, std::string x) {
    for (std::size_t i = 0; i < seq.size(); ++i) {
      const Module& m = seq[i];
      const std::string path = join_path(prefix, std::to_string(i));
      const auto* conv = as<Conv2D>(m);
      const auto* bn = i + 1 < seq.size() ? as<BatchNorm2d>(seq[i + 1]) : nullptr;
      if (state.fold_bn && conv && bn) {
        LayerBuilder builder(state, m, path, shape);
        x = export_conv_bn(*conv, *bn, builder, x);
        shape = bn->output_shape(conv->output_shape(shape));
        ++i;
        continue;
      }
      x = module(m, path, shape, x);
      shape = m.output_shape(shape);
    }
    return x;
  }
};

void set_float_type(onnx::ValueInfoProto& v, const std::string& name, const Shape& per_example) {
  v.set_name(name);
  onnx::TypeProto_Tensor& t = *v.mutable_type()->mutable_tensor_type();
  t.set_elem_type(onnx::TensorProto::FLOAT);
  onnx::TensorShapeProto& s = *t.mutable_shape();
  s.add_dim()->set_dim_param("N");
  for (const std::size_t d : per_example) s.add_dim()->set_dim_value(static_cast<std::int64_t>(d));
}

std::string json_numbers(const std::vector<float>& values) {
  std::string s = "[";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) s += ',';
    s += format_number(values[i]);
  }
  return s + "]";
}

void add_metadata(onnx::ModelProto& model, const char* key, const std::string& value) {
  onnx::StringStringEntryProto& e = *model.add_metadata_props();
  e.set_key(key);
  e.set_value(value);
}

// Switches a model to eval mode, and back to the modes its layers had (a layer may have been put in eval
// mode alone): each Sequential and Residual and their layers, parents first, so a child's own mode wins.
class EvalModeScope {
 public:
  explicit EvalModeScope(Sequential& model) {
    remember(model);
    model.eval();
  }
  ~EvalModeScope() {
    for (const auto& [module, training] : modes_) module->train(training);
  }
  EvalModeScope(const EvalModeScope&) = delete;
  EvalModeScope& operator=(const EvalModeScope&) = delete;

 private:
  void remember(Module& m) {
    modes_.emplace_back(&m, m.is_training());
    if (auto* seq = dynamic_cast<Sequential*>(&m)) {
      for (std::size_t i = 0; i < seq->size(); ++i) remember((*seq)[i]);
    } else if (auto* res = dynamic_cast<Residual*>(&m)) {
      remember(res->body());
      if (res->has_shortcut()) remember(res->shortcut());
    }
  }
  std::vector<std::pair<Module*, bool>> modes_;
};

onnx::ModelProto build_model(Sequential& net, const OnnxModelInfo& info, const OnnxExportOptions& options) {
  if (options.opset != 13 && options.opset != 17)
    fail("ONNX export: opset ", options.opset, " is not supported (expected 13 or 17)");
  if (info.input.empty())
    fail("ONNX export: the model's input shape is unknown (OnnxModelInfo::input, e.g. [1, 28, 28])");
  const EvalModeScope eval_mode(net);
  const Shape out_shape = net.output_shape(info.input);  // a model that cannot take the input fails here

  onnx::ModelProto model;
  model.set_ir_version(options.opset == 13 ? 7 : 8);
  model.set_producer_name("tapegrad");
  model.set_producer_version("0.1.0");
  onnx::OperatorSetIdProto& opset = *model.add_opset_import();
  opset.set_domain("");
  opset.set_version(options.opset);
  onnx::GraphProto& graph = *model.mutable_graph();
  graph.set_name(info.model_source.empty() ? "tapegrad" : info.model_source);
  set_float_type(*graph.add_input(), "input", info.input);

  Exporter exporter{GraphState{&graph, options.opset, options.fold_bn, {"input", "logits"}, {}}};
  const std::string out = exporter.sequential(net, "", info.input, "input");
  if (out == "input") {  // nothing but identities
    onnx::NodeProto& node = *graph.add_node();
    node.set_op_type("Identity"), node.set_name("identity"), node.add_input("input"),
        node.add_output("logits");
  } else {
    for (onnx::NodeProto& node : *graph.mutable_node()) {
      for (std::string& name : *node.mutable_input())
        if (name == out) name = "logits";
      for (std::string& name : *node.mutable_output())
        if (name == out) name = "logits";
    }
  }
  set_float_type(*graph.add_output(), "logits", out_shape);

  if (!info.mean.empty()) add_metadata(model, onnx_detail::kMetaMean, json_numbers(info.mean));
  if (!info.std.empty()) add_metadata(model, onnx_detail::kMetaStd, json_numbers(info.std));
  if (!info.class_names.empty())
    add_metadata(model, onnx_detail::kMetaClasses, nlohmann::json(info.class_names).dump());
  if (!info.model_text.empty()) add_metadata(model, onnx_detail::kMetaModel, info.model_text);
  if (!info.model_source.empty()) add_metadata(model, onnx_detail::kMetaSource, info.model_source);
  std::string input_text;
  for (std::size_t i = 0; i < info.input.size(); ++i) {
    if (i > 0) input_text += 'x';
    input_text += std::to_string(info.input[i]);
  }
  add_metadata(model, onnx_detail::kMetaInput, input_text);

  onnx_detail::check_strictly(
      model, "ONNX export of " + (info.model_source.empty() ? std::string("the model") : info.model_source));
  return model;
}

std::string serialize(const onnx::ModelProto& model) {
  std::string bytes;
  if (!model.SerializeToString(&bytes)) fail("ONNX export: the model does not serialize (over 2 GiB?)");
  return bytes;
}

}  // namespace onnx_export_detail

void register_onnx_export(const std::string& type_name, OnnxExportFunction export_function) {
  if (type_name.empty()) fail("register_onnx_export: empty type name");
  if (!export_function) fail("register_onnx_export(\"", type_name, "\"): empty function");
  std::lock_guard lock(onnx_export_detail::registry_mutex());
  onnx_export_detail::user_exports()[type_name] = std::move(export_function);
}

std::string export_onnx(Sequential& model, const OnnxModelInfo& info, const OnnxExportOptions& options) {
  return onnx_export_detail::serialize(onnx_export_detail::build_model(model, info, options));
}

OnnxExportReport save_onnx(Sequential& model, const OnnxModelInfo& info, const std::string& path,
                           const OnnxExportOptions& options) {
  const onnx::ModelProto proto = onnx_export_detail::build_model(model, info, options);
  const std::string bytes = onnx_export_detail::serialize(proto);
  write_file_atomically(path, {{bytes.data(), bytes.size()}});
  return {bytes.size(), static_cast<std::size_t>(proto.graph().node_size()),
          static_cast<std::size_t>(proto.graph().initializer_size())};
}

}  // namespace tg
