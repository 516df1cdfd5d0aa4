// ONNX export and import of a Sequential (ONNX's protobuf schema and checker as Debian ships them,
// libonnx-dev; the library tapegrad_onnx, target tapegrad::onnx). What a model leaves and enters with:
// the graph and its weights, plus what the graph does not say (input size, class names, normalization, the
// model file's text), carried in metadata_props. docs/onnx.md is the user's page.
//
// Not in tapegrad.hpp: a program that does not export or import links neither protobuf nor libonnx.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
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
// export_onnx written to `path` atomically (a temp file renamed; nothing is left behind on error).
void save_onnx(Sequential& model, const OnnxModelInfo& info, const std::string& path,
               const OnnxExportOptions& options = {});

// An ONNX model mapped onto tapegrad's layers: a model file (text) and its state in named_state() order.
struct ImportedOnnx {
  std::string model_text;   // layer lines and blocks, one comment line naming the file, opset and producer
  OnnxModelInfo info;       // input from the graph; classes, mean, std from metadata when present
  std::size_t classes = 0;  // the output's size
  std::vector<std::pair<std::string, Array>> state;  // "0.weight", "3.body.1.running_mean", ...
  std::vector<std::string> notes;                    // what the mapping did that a user should know
};

// Parses a serialized ModelProto (`bytes`, from the file `name`, for messages) and maps its graph: a chain
// of Conv, BatchNormalization, Relu, Clip(0, 6), LeakyRelu, Sigmoid, Tanh, Softmax, LogSoftmax, MaxPool,
// AveragePool (or Pad + AveragePool, Pad + Conv), GlobalAveragePool + Flatten, Flatten, Gemm, MatMul + Add,
// Dropout and Identity, where a fork that joins again at an Add is a residual block. tg::Error naming the
// node (name and op_type) and what is supported for anything else; nothing is half-imported.
ImportedOnnx import_onnx(const std::string& bytes, const std::string& name);
// import_onnx of a file; tg::Error naming it when it cannot be read.
ImportedOnnx load_onnx(const std::string& path);

}  // namespace tg
