// bench_libtorch: PyTorch's C++ frontend (Debian's libtorch-dev, 1.13) on the workloads of BENCHMARKS.md,
// the twin of bench_torch.py without Python in the loop. Built only when libtorch-dev is installed
// (make bench builds it); prints one JSON object with the same keys as bench_torch.py.
//   bench_libtorch layers --threads T [--repeats R] [--min-time S]
//   bench_libtorch train --model cifarnet|mobilenet --threads T [--optimizer sgd|adamw] [--images N]
// layers: the same cases, names and timing scheme as bench_torch.py (warm-up, then R rounds of >= S seconds,
//   the median time per call). train: a 3x32x32 model on random data (the speed does not depend on it):
//   batch 128, SGD lr 0.05 momentum 0.9 or AdamW lr 1e-3, cross-entropy, a fixed-seed shuffle; the timed loop
//   covers batching, forward, backward and step; then inference on 2,000 images, batch 1000.
#include <sys/resource.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

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

// BENCHMARKS.md's 3x32x32 models, built in the order PyTorch's Python twin builds them (push_back one by
// one: nn::Sequential(a, b, ...) would evaluate its arguments right to left in g++ and change the init).
torch::nn::Sequential make_model(const std::string& name) {
  namespace nn = torch::nn;
  nn::Sequential m;
  auto conv_bn_relu = [&m](int64_t in, int64_t out, int64_t k, int64_t stride, int64_t groups) {
    m->push_back(nn::Conv2d(nn::Conv2dOptions(in, out, k).stride(stride).padding(k / 2).groups(groups)));
    m->push_back(nn::BatchNorm2d(out));
    m->push_back(nn::ReLU());
  };
  int64_t last = 0;
  if (name == "cifarnet") {
    conv_bn_relu(3, 32, 3, 1, 1);
    conv_bn_relu(32, 32, 3, 1, 1);
    m->push_back(nn::MaxPool2d(2));
    conv_bn_relu(32, 64, 3, 1, 1);
    conv_bn_relu(64, 64, 3, 1, 1);
    m->push_back(nn::MaxPool2d(2));
    conv_bn_relu(64, 128, 3, 1, 1);
    last = 128;
  } else {
    conv_bn_relu(3, 32, 3, 1, 1);
    int64_t c = 32;
    for (int block = 0; block < 4; ++block) {
      conv_bn_relu(c, c, 3, block % 2 == 1 ? 2 : 1, c);  // depthwise; stride 2 in the 2nd and 4th
      conv_bn_relu(c, 2 * c, 1, 1, 1);                   // pointwise
      c *= 2;
    }
    last = c;
  }
  m->push_back(nn::AdaptiveAvgPool2d(nn::AdaptiveAvgPool2dOptions(1)));
  m->push_back(nn::Flatten());
  m->push_back(nn::Linear(last, 10));
  return m;
}

double peak_rss_mib() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

int cmd_train(const std::string& model_name, int threads, const std::string& optimizer, int64_t images) {
  torch::manual_seed(1);
  const torch::Tensor x_train = torch::randn({images, 3, 32, 32}), y_train = torch::randint(10, {images});
  const torch::Tensor x_test = torch::randn({2000, 3, 32, 32}), y_test = torch::randint(10, {2000});
  torch::nn::Sequential model = make_model(model_name);
  std::unique_ptr<torch::optim::Optimizer> opt;
  if (optimizer == "adamw") {
    opt = std::make_unique<torch::optim::AdamW>(model->parameters(), torch::optim::AdamWOptions(1e-3));
  } else {
    opt = std::make_unique<torch::optim::SGD>(model->parameters(),
                                              torch::optim::SGDOptions(0.05).momentum(0.9));
  }
  const int64_t batch = 128;
  torch::Generator gen = at::detail::createCPUGenerator(1);
  model->train();
  const auto t0 = Clock::now();
  const torch::Tensor perm = torch::randperm(images, gen);
  double loss_sum = 0;
  int64_t steps = 0;
  torch::Tensor loss_acc = torch::zeros({});
  for (int64_t i = 0; i < images; i += batch) {
    const torch::Tensor idx = perm.slice(0, i, std::min(i + batch, images));
    const torch::Tensor xb = x_train.index_select(0, idx), yb = y_train.index_select(0, idx);
    torch::Tensor loss = torch::nn::functional::cross_entropy(model->forward(xb), yb);
    opt->zero_grad();
    loss.backward();
    opt->step();
    loss_acc += loss.detach();
    ++steps;
  }
  const double train_seconds = seconds_since(t0);
  loss_sum = loss_acc.item<double>();
  model->eval();
  double infer_rate = 0;
  {
    torch::NoGradGuard no_grad;
    model->forward(x_test.slice(0, 0, 1000));  // untimed warm-up batch
    const auto t1 = Clock::now();
    for (int64_t i = 0; i < 2000; i += 1000) model->forward(x_test.slice(0, i, i + 1000)).argmax(1);
    infer_rate = 2000 / seconds_since(t1);
  }
  std::printf(
      "{\"model\": \"%s\", \"threads\": %d, \"optimizer\": \"%s\", \"torch\": \"libtorch %s\", "
      "\"train_images_per_s\": %.1f, \"epoch_seconds\": %.3f, \"train_loss\": %.5f, \"infer_images_per_s\": "
      "%.1f, \"test_accuracy\": 0, \"peak_rss_mib\": %.1f}\n",
      model_name.c_str(), threads, optimizer.c_str(), TORCH_VERSION, images / train_seconds, train_seconds,
      loss_sum / static_cast<double>(steps), infer_rate, peak_rss_mib());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_libtorch layers|train --threads T [...]\n");
    return 2;
  }
  const std::string cmd = argv[1];
  int threads = 1, repeats = 15;
  double min_time = 0.05;
  int64_t images = 10000;
  std::string model = "cifarnet", optimizer = "sgd";
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--threads")
      threads = std::stoi(value);
    else if (flag == "--repeats")
      repeats = std::stoi(value);
    else if (flag == "--min-time")
      min_time = std::stod(value);
    else if (flag == "--model")
      model = value;
    else if (flag == "--optimizer")
      optimizer = value;
    else if (flag == "--images")
      images = std::stoll(value);
    else {
      std::fprintf(stderr, "bench_libtorch: unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  at::set_num_interop_threads(1);
  at::set_num_threads(threads);
  if (cmd == "layers") return cmd_layers(threads, repeats, min_time);
  if (cmd == "train" && (model == "cifarnet" || model == "mobilenet")) {
    return cmd_train(model, threads, optimizer, images);
  }
  std::fprintf(stderr, "bench_libtorch: expected 'layers' or 'train --model cifarnet|mobilenet'\n");
  return 2;
}
