// Why one file: the layer rows and the training run share the data, timing and JSON helpers, as
// bench_torch.py's one file does; split, each half would need a header of them that nothing else includes.
// bench_libtorch: PyTorch's C++ frontend (Debian's libtorch-dev, 1.13) on the workloads of
// docs/benchmarks.md, the twin of bench_torch.py without Python in the loop. Built only when libtorch-dev is
// installed (make bench builds it); prints one JSON object with the same keys as bench_torch.py.
//   bench_libtorch layers --threads T [--repeats R] [--min-time S]
//   bench_libtorch train --model lenet|convnet --threads T --data DIR [--epochs E] [--limit N]
//   bench_libtorch train --model cifarnet|mobilenet|resnet20|mobilenetv2 --threads T [--optimizer sgd|adamw]
//       [--images N] [--precision fp32|bf16]
// --precision bf16: the forward and loss under autocast to bf16, as bench_torch.py's torch.autocast.
// layers: the same cases, names and timing scheme as bench_torch.py (warm-up, then R rounds of >= S seconds,
//   the median time per call).
// train: bench_torch.py's training step for step: MNIST from DIR's IDX files (plain or .gz; batch 64) or
//   3x32x32 random data (the speed does not depend on it; batch 128, 2,000 test images), SGD lr 0.05 momentum
//   0.9 or AdamW lr 1e-3, cross-entropy, torch::manual_seed(1) before the model, a randperm shuffle seeded 1
//   each epoch; the timed loop covers batching, forward, backward and step. After each epoch, inference on
//   the test set (batch 1000, one untimed warm-up batch) and its accuracy; at the end, batch-1 latency
//   (median and p99 of 1,000 calls on one test image). "step_losses" lists the first 20 losses for the
//   step-for-step check against bench_torch.py.
// The models are in bench_libtorch_models.cpp (make_model, as bench_torch.py's).
#include <ATen/autocast_mode.h>
#include <sys/resource.h>
#include <torch/torch.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "bench/bench_libtorch_models.hpp"

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double time_per_call(const std::function<void()>& step, int repeats, double min_time) {
  for (int i = 0; i < 3; ++i) step();  // warm-up (allocator, kernels, caches)
  const auto warm = Clock::now();
  while (seconds_since(warm) < min_time) step();
  std::vector<double> rounds;
  for (int r = 0; r < repeats; ++r) {
    int n = 0;
    const auto t0 = Clock::now();
    double dt = 0;
    do {
      step();
      ++n;
      dt = seconds_since(t0);
    } while (dt < min_time);
    rounds.push_back(dt / n);
  }
  std::sort(rounds.begin(), rounds.end());
  const std::size_t m = rounds.size() / 2;
  return rounds.size() % 2 ? rounds[m] : (rounds[m - 1] + rounds[m]) / 2;
}

struct Case {
  std::string name;
  std::function<torch::Tensor(const std::vector<torch::Tensor>&)> fn;
  std::vector<torch::Tensor> inputs;
  double gflop;       // nominal work of one forward
  double bwd_factor;  // fwd+bwd work = gflop * bwd_factor
};

Case conv(std::string name, std::vector<int64_t> x, std::vector<int64_t> w, int64_t stride = 1,
          int64_t padding = 0, int64_t groups = 1) {
  const int64_t ho = (x[2] + 2 * padding - w[2]) / stride + 1, wo = (x[3] + 2 * padding - w[3]) / stride + 1;
  const double gflop = 2.0 * x[0] * w[0] * ho * wo * w[1] * w[2] * w[3] / 1e9;
  auto fn = [=](const std::vector<torch::Tensor>& t) {
    return torch::conv2d(t[0], t[1], t[2], {stride, stride}, {padding, padding}, {1, 1}, groups);
  };
  return {std::move(name), fn, {torch::randn(x), torch::randn(w), torch::randn({w[0]})}, gflop, 3};
}

Case maxpool(std::string name, std::vector<int64_t> x, int64_t k, int64_t s) {
  const int64_t ho = (x[2] - k) / s + 1, wo = (x[3] - k) / s + 1;
  auto fn = [=](const std::vector<torch::Tensor>& t) { return torch::max_pool2d(t[0], {k, k}, {s, s}); };
  return {std::move(name), fn, {torch::randn(x)}, 1.0 * x[0] * x[1] * ho * wo * k * k / 1e9, 2};
}

std::vector<Case> make_cases() {
  torch::manual_seed(0);
  std::vector<Case> cases = {
      conv("conv 32x3x28x28 k4 4f s1", {32, 3, 28, 28}, {4, 3, 4, 4}),
      conv("conv 1x3x28x28 k2 4f s2", {1, 3, 28, 28}, {4, 3, 2, 2}, 2),
      conv("conv 4x3x12x10 k3 128f s2 p1", {4, 3, 12, 10}, {128, 3, 3, 3}, 2, 1),
      conv("conv 64x6x14x14 k5 16f (lenet conv2)", {64, 6, 14, 14}, {16, 6, 5, 5}),
      conv("conv 64x32x26x26 k3 64f (convnet conv2)", {64, 32, 26, 26}, {64, 32, 3, 3}),
      conv("conv 64x1x28x28 k5 6f p2 (lenet conv1)", {64, 1, 28, 28}, {6, 1, 5, 5}, 1, 2),
      conv("conv 64x1x28x28 k3 32f (convnet conv1)", {64, 1, 28, 28}, {32, 1, 3, 3}),
      conv("conv 128x64x16x16 k3 64f p1 (cifarnet conv4)", {128, 64, 16, 16}, {64, 64, 3, 3}, 1, 1),
      conv("depthwise 128x64x16x16 k3 p1", {128, 64, 16, 16}, {64, 1, 3, 3}, 1, 1, 64),
      maxpool("maxpool 32x3x28x28 k4 s2", {32, 3, 28, 28}, 4, 2),
      maxpool("maxpool 64x64x24x24 k2 s2", {64, 64, 24, 24}, 2, 2),
  };
  // batch norm in training mode: its work is memory traffic; "gflop" counts the ~10 flops per element of
  // forward (mean, variance, normalize, scale) for a common GFLOP/s column.
  const double bn_elems = 128.0 * 64 * 16 * 16;
  auto rm = torch::zeros({64}), rv = torch::ones({64});
  cases.push_back({"batchnorm2d 128x64x16x16 train",
                   [rm, rv](const std::vector<torch::Tensor>& t) {
                     return torch::batch_norm(t[0], t[1], t[2], rm, rv, true, 0.1, 1e-5, false);
                   },
                   {torch::randn({128, 64, 16, 16}), torch::randn({64}), torch::randn({64})},
                   10 * bn_elems / 1e9,
                   2});
  cases.push_back({"avgpool 128x64x16x16 k2 s2",
                   [](const std::vector<torch::Tensor>& t) {
                     return torch::avg_pool2d(t[0], {2, 2}, {2, 2});
                   },
                   {torch::randn({128, 64, 16, 16})},
                   bn_elems / 1e9,
                   2});
  cases.push_back({"global avgpool 128x128x8x8",
                   [](const std::vector<torch::Tensor>& t) {
                     return torch::adaptive_avg_pool2d(t[0], {1, 1}).flatten(1);
                   },
                   {torch::randn({128, 128, 8, 8})},
                   128.0 * 128 * 8 * 8 / 1e9,
                   2});
  cases.push_back({"linear 64x9216 -> 128",
                   [](const std::vector<torch::Tensor>& t) { return torch::linear(t[0], t[1], t[2]); },
                   {torch::randn({64, 9216}), torch::randn({128, 9216}), torch::randn({128})},
                   2.0 * 64 * 9216 * 128 / 1e9,
                   3});
  return cases;
}

int cmd_layers(int threads, int repeats, double min_time) {
  std::printf("{\"threads\": %d, \"torch\": \"libtorch %s\", \"results\": [\n", threads, TORCH_VERSION);
  bool first = true;
  for (const Case& c : make_cases()) {
    auto fwd = [&] {
      torch::NoGradGuard no_grad;
      c.fn(c.inputs);
    };
    std::vector<torch::Tensor> leaves;
    for (const torch::Tensor& t : c.inputs) leaves.push_back(t.detach().clone().requires_grad_(true));
    torch::manual_seed(1);
    torch::Tensor g;
    {
      torch::NoGradGuard no_grad;
      g = torch::randn_like(c.fn(leaves));
    }
    auto fwd_bwd = [&] {
      for (torch::Tensor& t : leaves) t.mutable_grad() = torch::Tensor();
      c.fn(leaves).backward(g);
    };
    for (const auto& [pass, step, work] :
         {std::tuple{"fwd", std::function<void()>(fwd), c.gflop},
          std::tuple{"fwd+bwd", std::function<void()>(fwd_bwd), c.gflop * c.bwd_factor}}) {
      const double s = time_per_call(step, repeats, min_time);
      std::printf("%s {\"name\": \"%s\", \"pass\": \"%s\", \"us\": %.3f, \"gflop\": %.6f}",
                  first ? "" : ",\n", c.name.c_str(), pass, s * 1e6, work);
      first = false;
    }
  }
  std::printf("\n]}\n");
  return 0;
}

double peak_rss_mib() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

// An IDX file (MNIST's format) as a uint8 tensor of its dimensions; gzread reads plain and gzipped files
// alike. The names tried are bench_torch.py's: DIR/STEM-ubyte and DIR/STEM with ".idx" for "-idx", each
// plain or .gz.
torch::Tensor read_idx(const std::string& dir, const std::string& stem) {
  std::string dotted = stem;
  dotted.replace(dotted.find("-idx"), 4, ".idx");
  for (const std::string& name : {stem + "-ubyte", dotted + "-ubyte"}) {
    for (const char* ext : {"", ".gz"}) {
      const std::string path = dir + "/" + name + ext;
      gzFile f = ::gzopen(path.c_str(), "rb");
      if (!f) continue;
      std::vector<uint8_t> raw;
      uint8_t buf[1 << 16];
      for (int n = 0; (n = ::gzread(f, buf, sizeof buf)) > 0;) raw.insert(raw.end(), buf, buf + n);
      ::gzclose(f);
      // magic: 0, 0, 0x08 (unsigned bytes), the number of dimensions; then each dimension, big-endian
      const bool bytes = raw.size() >= 4 && raw[0] == 0 && raw[1] == 0 && raw[2] == 0x08;
      std::vector<int64_t> dims(bytes ? raw[3] : 0);
      std::size_t count = 1, offset = 4 + 4 * dims.size();
      for (std::size_t i = 0; i < dims.size() && 8 + 4 * i <= raw.size(); ++i) {
        const uint8_t* d = raw.data() + 4 + 4 * i;
        dims[i] = int64_t{d[0]} << 24 | int64_t{d[1]} << 16 | int64_t{d[2]} << 8 | d[3];
        count *= static_cast<std::size_t>(dims[i]);
      }
      if (dims.empty() || raw.size() != offset + count) {
        std::fprintf(stderr, "bench_libtorch: %s is not an IDX file of unsigned bytes\n", path.c_str());
        std::exit(1);
      }
      return torch::from_blob(raw.data() + offset, dims, torch::kUInt8).clone();
    }
  }
  std::fprintf(stderr, "bench_libtorch: no %s-ubyte[.gz] in %s\n", stem.c_str(), dir.c_str());
  std::exit(1);
}

struct Data {
  torch::Tensor x_train, y_train, x_test, y_test;
  int64_t batch = 0;
};

// MNIST normalized as bench_torch.py does it: (x / 255 - 0.1307) / 0.3081 in float32, N x 1 x 28 x 28.
Data mnist(const std::string& dir, int64_t limit) {
  const auto images = [](torch::Tensor raw) {
    return ((raw.to(torch::kFloat32) / 255.0 - 0.1307) / 0.3081).reshape({-1, 1, 28, 28}).contiguous();
  };
  torch::Tensor x = read_idx(dir, "train-images-idx3"), y = read_idx(dir, "train-labels-idx1");
  if (limit > 0) {
    x = x.slice(0, 0, limit);
    y = y.slice(0, 0, limit);
  }
  return {images(x), y.to(torch::kInt64), images(read_idx(dir, "t10k-images-idx3")),
          read_idx(dir, "t10k-labels-idx1").to(torch::kInt64), 64};
}

// 3x32x32 random images: the speed does not depend on the pixels. Drawn in bench_torch.py's order.
Data random_images(int64_t images) {
  torch::manual_seed(1);
  Data d;
  d.x_train = torch::randn({images, 3, 32, 32});
  d.y_train = torch::randint(10, {images});
  d.x_test = torch::randn({2000, 3, 32, 32});
  d.y_test = torch::randint(10, {2000});
  d.batch = 128;
  return d;
}

// Inference on the test set, batch 1000, eval mode without autograd, after one untimed warm-up batch:
// images/s and accuracy.
std::pair<double, double> evaluate(torch::nn::Sequential& model, const torch::Tensor& x,
                                   const torch::Tensor& y) {
  const int64_t n = x.size(0), batch = 1000;
  model->eval();
  int64_t correct = 0;
  double seconds = 0;
  {
    torch::NoGradGuard no_grad;
    model->forward(x.slice(0, 0, batch));
    const auto t0 = Clock::now();
    for (int64_t i = 0; i < n; i += batch) {
      const torch::Tensor pred = model->forward(x.slice(0, i, i + batch)).argmax(1);
      correct += pred.eq(y.slice(0, i, i + batch)).sum().item<int64_t>();
    }
    seconds = seconds_since(t0);
  }
  model->train();
  return {static_cast<double>(n) / seconds, static_cast<double>(correct) / static_cast<double>(n)};
}

// Batch-1 inference as predict and embedded users see it: one image, eval mode without autograd, 20 warm-up
// calls, then 1,000 timed one by one. Median and p99 (the 990th of 1,000) in microseconds.
std::pair<double, double> latency_us(torch::nn::Sequential& model, const torch::Tensor& image) {
  model->eval();
  torch::NoGradGuard no_grad;
  for (int i = 0; i < 20; ++i) model->forward(image);
  std::vector<double> us(1000);
  for (double& t : us) {
    const auto t0 = Clock::now();
    model->forward(image);
    t = seconds_since(t0) * 1e6;
  }
  std::sort(us.begin(), us.end());
  return {(us[499] + us[500]) / 2, us[989]};
}

struct TrainOptions {
  std::string model, optimizer, data, precision = "fp32";
  int threads = 1, epochs = 1;
  int64_t images = 10000, limit = 0;
};

// bench_torch.py's cmd_train step for step: the same data, seed, init order, shuffle and loss, so that the
// first step losses agree (scripts/bench.py compares them).
int cmd_train(const TrainOptions& o) {
  const Data d = bench::random_data_model(o.model) ? random_images(o.images) : mnist(o.data, o.limit);
  torch::manual_seed(1);
  torch::nn::Sequential model = bench::make_model(o.model);
  std::unique_ptr<torch::optim::Optimizer> opt;
  if (o.optimizer == "adamw") {
    opt = std::make_unique<torch::optim::AdamW>(model->parameters(), torch::optim::AdamWOptions(1e-3));
  } else {
    opt = std::make_unique<torch::optim::SGD>(model->parameters(),
                                              torch::optim::SGDOptions(0.05).momentum(0.9));
  }
  const std::vector<torch::Tensor> params = model->parameters();
  torch::Generator gen = at::detail::createCPUGenerator(1);
  const int64_t n = d.x_train.size(0);
  std::vector<torch::Tensor> step_losses;  // the first 20, read after training
  std::string per_epoch;
  double train_seconds = 0, train_loss = 0, infer_rate = 0, accuracy = 0;
  model->train();
  for (int epoch = 0; epoch < o.epochs; ++epoch) {
    torch::Tensor loss_sum = torch::zeros({});
    int64_t steps = 0;
    const auto t0 = Clock::now();
    const torch::Tensor perm = torch::randperm(n, gen);
    for (int64_t i = 0; i < n; i += d.batch) {
      const torch::Tensor idx = perm.slice(0, i, std::min(i + d.batch, n));
      const torch::Tensor xb = d.x_train.index_select(0, idx), yb = d.y_train.index_select(0, idx);
      // --precision bf16: the forward and loss under autocast, as Python's torch.autocast("cpu",
      // dtype=torch.bfloat16) (bench_torch.py): convs and linears in bf16 through oneDNN.
      if (o.precision == "bf16") {
        at::autocast::set_cpu_enabled(true);
        at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
      }
      torch::Tensor loss = torch::nn::functional::cross_entropy(model->forward(xb), yb);
      if (o.precision == "bf16") {
        at::autocast::set_cpu_enabled(false);
        at::autocast::clear_cache();
      }
      // Gradients set to none as Python's zero_grad(set_to_none=True) (libtorch 1.13's zero_grad() zeroes
      // them): backward then stores each gradient instead of adding it to zeros.
      for (const torch::Tensor& p : params) p.mutable_grad() = torch::Tensor();
      loss.backward();
      opt->step();
      loss_sum += loss.detach();
      if (step_losses.size() < 20) step_losses.push_back(loss.detach());
      ++steps;
    }
    const double seconds = seconds_since(t0);
    train_seconds += seconds;
    train_loss = loss_sum.item<double>() / static_cast<double>(steps);
    std::tie(infer_rate, accuracy) = evaluate(model, d.x_test, d.y_test);  // the last epoch's is reported
    char buf[160];
    std::snprintf(buf, sizeof buf,
                  "%s{\"epoch\": %d, \"seconds\": %.3f, \"train_loss\": %.9g, \"test_accuracy\": %.4f}",
                  epoch ? ", " : "", epoch + 1, seconds, train_loss, accuracy);
    per_epoch += buf;
  }
  const auto [median_us, p99_us] = latency_us(model, d.x_test.slice(0, 0, 1));
  std::string losses;
  for (const torch::Tensor& l : step_losses) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%s%.17g", losses.empty() ? "" : ", ", l.item<double>());
    losses += buf;
  }
  std::printf(
      "{\"model\": \"%s\", \"threads\": %d, \"precision\": \"%s\", \"optimizer\": \"%s\", "
      "\"torch\": \"libtorch %s\", "
      "\"train_images_per_s\": %.1f, \"epoch_seconds\": %.3f, \"train_loss\": %.9g, "
      "\"infer_images_per_s\": %.1f, \"test_accuracy\": %.4f, \"peak_rss_mib\": %.1f, "
      "\"latency_us\": {\"median\": %.2f, \"p99\": %.2f}, \"step_losses\": [%s], \"per_epoch\": [%s]}\n",
      o.model.c_str(), o.threads, o.precision.c_str(), o.optimizer.c_str(), TORCH_VERSION,
      static_cast<double>(n) * o.epochs / train_seconds, train_seconds / o.epochs, train_loss, infer_rate,
      accuracy, peak_rss_mib(), median_us, p99_us, losses.c_str(), per_epoch.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_libtorch layers|train --threads T [...]\n");
    return 2;
  }
  const std::string cmd = argv[1];
  int repeats = 15;
  double min_time = 0.05;
  TrainOptions o{.model = "cifarnet", .optimizer = "sgd", .data = ".cache/mnist"};
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--threads")
      o.threads = std::stoi(value);
    else if (flag == "--repeats")
      repeats = std::stoi(value);
    else if (flag == "--min-time")
      min_time = std::stod(value);
    else if (flag == "--model")
      o.model = value;
    else if (flag == "--optimizer")
      o.optimizer = value;
    else if (flag == "--images")
      o.images = std::stoll(value);
    else if (flag == "--data")
      o.data = value;
    else if (flag == "--epochs")
      o.epochs = std::stoi(value);
    else if (flag == "--limit")
      o.limit = std::stoll(value);
    else if (flag == "--precision" && (value == "fp32" || value == "bf16"))
      o.precision = value;
    else {
      std::fprintf(stderr, "bench_libtorch: unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  at::set_num_interop_threads(1);
  at::set_num_threads(o.threads);
  if (cmd == "layers") return cmd_layers(o.threads, repeats, min_time);
  const std::vector<std::string>& models = bench::model_names();
  if (cmd == "train" && std::find(models.begin(), models.end(), o.model) != models.end() && o.epochs >= 1 &&
      (o.optimizer == "sgd" || o.optimizer == "adamw")) {
    return cmd_train(o);
  }
  std::fprintf(
      stderr,
      "bench_libtorch: expected 'layers' or 'train --model lenet|convnet|cifarnet|mobilenet|resnet20|"
      "mobilenetv2 [--optimizer sgd|adamw] [--epochs E >= 1]'\n");
  return 2;
}
