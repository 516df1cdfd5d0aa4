// ONNX export and import of a Sequential (ONNX's protobuf schema and checker as Debian ships them,
// libonnx-dev; the library tapegrad_onnx, target tapegrad::onnx). What a model leaves and enters with:
// the graph and its weights, plus what the graph does not say (input size, class names, normalization, the
// model file's text), carried in metadata_props. docs/onnx.md is the user's page.
//
// Not in tapegrad.hpp: a program that does not export or import links neither protobuf nor libonnx.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "core/autograd/tensor.hpp"
#include "layers/sequential.hpp"

namespace tg {

// What travels beside the graph (metadata_props "tapegrad.*"; absent fields are simply not written).
struct OnnxModelInfo {
  Shape input;  // per example, [C, H, W] (or [F]); the graph's input is [N, ...input]
  std::vector<std::string> class_names;  // index = label; "tapegrad.classes" (JSON array)
  std::vector<float> mean, std;          // per channel: x = (pixel / 255 - mean) / std; "tapegrad.mean", ...
  std::string model_text;                // the model file as written; "tapegrad.model"
  std::string model_source;              // "net.tg", "lenet": names the nodes ("3.body.0.conv2d@net.tg:12")
};

struct OnnxExportOptions {
  int opset = 13;        // 13 or 17
  bool fold_bn = false;  // fold each batch norm into the convolution before it, as torch.onnx.export does
};

// The model in eval mode as a serialized onnx::ModelProto: one float32 input "input" [N, C, H, W] (N
// symbolic), one output "logits" [N, classes]; checked with onnx::checker::check_model and strict shape
// inference before it is returned. tg::Error naming the layer (path and model-file line) for a module that
// has no ONNX form (a custom layer), or an opset other than 13 or 17. The model's train/eval mode is
// restored.
std::string export_onnx(Sequential& model, const OnnxModelInfo& info, const OnnxExportOptions& options = {});
// What save_onnx wrote (for the command line's report).
struct OnnxExportReport {
  std::size_t bytes = 0, nodes = 0, initializers = 0;
};
// export_onnx written to `path` atomically (a temp file renamed; nothing is left behind on error).
OnnxExportReport save_onnx(Sequential& model, const OnnxModelInfo& info, const std::string& path,
                           const OnnxExportOptions& options = {});

// ---- A layer's own ONNX form (docs/extending.md, "In ONNX files") ----
// The built-in layers, Sequential and Residual have theirs; any other module (a registered custom layer) is
// an export error until an export function is registered for its type_name().

// An attribute of a node: an int, a float, ints, floats or a string (ONNX's INT, FLOAT, INTS, ...).
using OnnxAttribute =
    std::variant<std::int64_t, float, std::vector<std::int64_t>, std::vector<float>, std::string>;

// The graph being written, as a layer's export function sees it. Everything it adds is named after the
// layer: initializers "<path>.<name>" ("3.body.0.weight", PyTorch's names), nodes
// "<path>.<line name>@<model-file line>" ("3.body.0.prelu@net.tg:12", then "...#2", "#3" for more).
class OnnxGraphBuilder {
 public:
  virtual ~OnnxGraphBuilder() = default;
  virtual const std::string& path() const = 0;   // the layer's state-key prefix, "3.body.0"
  virtual const Shape& input_shape() const = 0;  // per example, what reaches the layer: [C, H, W] or [F]
  virtual int opset() const = 0;                 // 13 or 17
  // A float32 initializer named "<path>.<name>"; returns its tensor name, for a node's inputs.
  virtual std::string add_initializer(const std::string& name, const Array& value) = 0;
  // An INT64 initializer (Reshape's shape, Pad's pads), named as add_initializer's.
  virtual std::string add_int64_initializer(const std::string& name,
                                            const std::vector<std::int64_t>& values) = 0;
  // A node of the default domain (an operator of the model's opset) with one output; returns the output's
  // tensor name. `inputs` are tensor names: the layer's input, initializers, earlier nodes' outputs ("" for
  // an optional input left out).
  virtual std::string add_node(const std::string& op_type, const std::vector<std::string>& inputs,
                               const std::vector<std::pair<std::string, OnnxAttribute>>& attributes = {}) = 0;
};

// Appends `layer` (in eval mode) to `graph`, reading the tensor named `input`; returns the name of the
// layer's output tensor (`input` itself for a layer that is the identity in eval mode).
using OnnxExportFunction =
    std::function<std::string(const Module& layer, OnnxGraphBuilder& graph, const std::string& input)>;
// Makes modules whose type_name() is `type_name` ("PReLU") exportable; a later registration for the same
// name replaces the earlier one. Thread-safe; usually called once at start-up beside tg::register_layer.
void register_onnx_export(const std::string& type_name, OnnxExportFunction export_function);

// An ONNX model mapped onto tapegrad's layers: the model (eval mode, weights set) and its model file.
struct ImportedOnnx {
  Sequential model;
  // model_to_text(model) after a comment line naming the file, its producer and opset; for a file written by
  // `tapegrad export` whose metadata holds a model text that builds the same layers, that text (comments,
  // blocks and repeats as the user wrote them).
  std::string model_text;
  OnnxModelInfo info;       // input from the graph (or the caller); classes, mean, std from metadata if there
  std::size_t classes = 0;  // the output's size
  std::vector<std::string> notes;  // what the mapping did that a user should know ("2 Dropout nodes dropped")
};

// Parses a serialized ModelProto (`bytes`, from the file `name`, for messages) and maps its graph: a chain
// of Conv, BatchNormalization, Relu, Clip(0, 6), LeakyRelu, Sigmoid, Tanh, Softmax, LogSoftmax, MaxPool,
// AveragePool (or Pad + AveragePool, Pad + Conv), GlobalAveragePool + Flatten, Flatten, Gemm, MatMul (+ Add),
// Dropout and Identity, where a fork that joins again at an Add is a residual block. `input` ([C, H, W])
// stands for the graph's input sizes when they are symbolic (and must agree with them when they are not).
// tg::Error naming the node (name and op_type) and what is supported for anything else.
ImportedOnnx import_onnx(const std::string& bytes, const std::string& name, const Shape& input = {});
// import_onnx of a file; tg::Error naming it when it cannot be read.
ImportedOnnx load_onnx(const std::string& path, const Shape& input = {});

}  // namespace tg
