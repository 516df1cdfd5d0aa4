// tapegrad export: a checkpoint as an ONNX model (layers/onnx/onnx.hpp), for onnxruntime and other runtimes.
// The model in eval mode with its input size, class names, normalization and model file in the metadata;
// prints one line saying what it wrote.
#include <cstdio>

#include "commands.hpp"
#include "layers/onnx/onnx.hpp"
#include "run_checkpoint.hpp"

namespace tg::cli {

int export_model(const ExportOptions& o) {
  Checkpoint ckpt = open_checkpoint(o.checkpoint);
  const RunInfo& run = ckpt.info;
  OnnxModelInfo info;
  info.input = run.input;
  info.class_names = run.class_names;
  info.mean = run.mean;
  info.std = run.std;
  info.model_text = run.model_text;
  info.model_source = run.model_source;
  const OnnxExportReport report =
      save_onnx(ckpt.model, info, o.out, {.opset = o.opset, .fold_bn = o.fold_bn});
  say("wrote %s: ONNX opset %d, %zu nodes%s, input Nx%s, %zu classes, %s bytes (from %s)\n", o.out.c_str(),
      o.opset, report.nodes, o.fold_bn ? " (batch norms folded)" : "", run.input_text().c_str(),
      run.classes(), with_commas(report.bytes).c_str(), o.checkpoint.c_str());
  return 0;
}

}  // namespace tg::cli
