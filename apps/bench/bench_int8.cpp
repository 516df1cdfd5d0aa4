// bench_int8: int8 inference against float32 in the same process (docs/benchmarks.md, "int8 inference"), the
// tapegrad side of scripts/bench.py --int8.
//   bench_int8 --model convnet|lenet|cifarnet|resnet20|mobilenetv2|... --threads 1 [--onnx MODEL.onnx]
// The model is built from its built-in file (1x28x28 for lenet and convnet, 3x32x32 for the others, 10
// classes), its batch norms given running statistics by 20 training-mode batches of random normal images (so
// that folding them is not the identity), then quantized (tg::Int8Model) on 512 more. Timed like
// bench_train's inference: batch-1 latency as `tapegrad predict` runs it (20 warm-up calls, then the median
// and p99 of 1,000), and batch-1000 throughput (one warm-up batch, then 3), first in float32, then in int8;
// the weight bytes of both. One JSON object. --onnx PATH writes the float32 model as ONNX for onnxruntime's
// side. The speed does not depend on the pixels, so the images are random.
#include <sys/resource.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "cli/models.hpp"
#include "layers/onnx/onnx.hpp"
#include "tapegrad.hpp"

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Timing {
  double median_us = 0, p99_us = 0, images_per_s = 0;
};

Timing time_model(const std::function<tg::Tensor(const tg::Tensor&)>& run, const tg::Tensor& one,
                  const tg::Tensor& batch) {
  Timing t;
  for (int i = 0; i < 20; ++i) run(one);
  std::vector<double> us(1000);
  for (double& u : us) {
    const double start = now();
    run(one);
    u = (now() - start) * 1e6;
  }
  std::sort(us.begin(), us.end());
  t.median_us = (us[499] + us[500]) / 2, t.p99_us = us[989];
  run(batch);
  const double start = now();
  for (int i = 0; i < 3; ++i) run(batch);
  t.images_per_s = 3.0 * static_cast<double>(batch.shape()[0]) / (now() - start);
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"int8 inference against float32: batch-1 latency, batch-1000 throughput, weight bytes"};
  std::string model_name = "convnet", onnx_path;
  int threads = 1;
  app.add_option("--model", model_name, "a built-in model");
  app.add_option("--threads", threads, "threads of tapegrad's pool")->check(CLI::Range(1, 256));
  app.add_option("--onnx", onnx_path, "also write the float32 model there as ONNX");
  CLI11_PARSE(app, argc, argv);
  tg::set_num_threads(threads);
  tg::manual_seed(1);
  const tg::Shape input =
      model_name == "lenet" || model_name == "convnet" ? tg::Shape{1, 28, 28} : tg::Shape{3, 32, 32};
  const tg::cli::ModelText text = tg::cli::find_model(model_name);
  tg::Sequential model = tg::model_from_text(text.text, input, 10, text.source);
  tg::Generator gen(1);
  auto images = [&](std::size_t n) {
    tg::Shape s{n};
    s.insert(s.end(), input.begin(), input.end());
    return tg::Tensor(tg::randn(s, gen));
  };
  {
    tg::NoGradGuard no_grad;
    model.train();
    for (int i = 0; i < 20; ++i) model(images(64));  // running statistics
    model.eval();
  }
  const tg::Tensor one = images(1), batch = images(1000);
  const Timing fp32 = time_model(
      [&](const tg::Tensor& x) {
        tg::NoGradGuard no_grad;
        return model(x);
      },
      one, batch);
  const double q_start = now();
  tg::Int8Model q(model, images(512));
  const double quantize_s = now() - q_start;
  const Timing int8 = time_model([&](const tg::Tensor& x) { return q(x); }, one, batch);
  if (!onnx_path.empty()) {
    tg::OnnxModelInfo info;
    info.input = input;
    info.model_source = text.source;
    tg::save_onnx(model, info, onnx_path);
  }
  const std::string reason = tg::int8_vnni_unsupported_reason();
  std::printf(
      "{\"model\": \"%s\", \"threads\": %d, \"kernels\": \"%s\", \"quantize_seconds\": %.3f, "
      "\"fp32\": {\"latency_us\": {\"median\": %.2f, \"p99\": %.2f}, \"infer_images_per_s\": %.1f, "
      "\"weight_bytes\": %zu}, "
      "\"int8\": {\"latency_us\": {\"median\": %.2f, \"p99\": %.2f}, \"infer_images_per_s\": %.1f, "
      "\"weight_bytes\": %zu}%s}\n",
      model_name.c_str(), threads, reason.empty() ? "avx512_vnni" : "plain", quantize_s, fp32.median_us,
      fp32.p99_us, fp32.images_per_s, q.fp32_bytes(), int8.median_us, int8.p99_us, int8.images_per_s,
      q.int8_bytes(), onnx_path.empty() ? "" : (", \"onnx\": \"" + onnx_path + "\"").c_str());
  return 0;
}
