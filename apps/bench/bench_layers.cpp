// bench_layers: layer micro-benchmarks of docs/benchmarks.md and, for each conv, OpenBLAS SGEMM on the
// GEMM shape its im2col produces (figure 6). Google Benchmark; names match bench_torch.py's.
//   bench_layers --threads 1 [--conv-algorithm auto|im2col|direct] [--benchmark_repetitions=15 ...]
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "core/kernels/blas.hpp"
#include "tapegrad.hpp"

namespace {

struct ConvCase {
  const char* name;
  tg::Shape x, w;
  tg::Conv2dOptions options;
};

const ConvCase kConvs[] = {
    {"conv 32x3x28x28 k4 4f s1", {32, 3, 28, 28}, {4, 3, 4, 4}, {}},
    {"conv 1x3x28x28 k2 4f s2", {1, 3, 28, 28}, {4, 3, 2, 2}, {.stride = {2, 2}}},
    {"conv 4x3x12x10 k3 128f s2 p1", {4, 3, 12, 10}, {128, 3, 3, 3}, {.stride = {2, 2}, .padding = {1, 1}}},
    {"conv 64x6x14x14 k5 16f (lenet conv2)", {64, 6, 14, 14}, {16, 6, 5, 5}, {}},
    {"conv 64x32x26x26 k3 64f (convnet conv2)", {64, 32, 26, 26}, {64, 32, 3, 3}, {}},
    {"conv 64x1x28x28 k5 6f p2 (lenet conv1)", {64, 1, 28, 28}, {6, 1, 5, 5}, {.padding = {2, 2}}},
    {"conv 64x1x28x28 k3 32f (convnet conv1)", {64, 1, 28, 28}, {32, 1, 3, 3}, {}},
    {"conv 128x64x16x16 k3 64f p1 (cifarnet conv4)", {128, 64, 16, 16}, {64, 64, 3, 3}, {.padding = {1, 1}}},
    {"depthwise 128x64x16x16 k3 p1", {128, 64, 16, 16}, {64, 1, 3, 3}, {.padding = {1, 1}, .groups = 64}},
};

tg::Tensor random(const tg::Shape& shape, std::uint64_t seed, bool requires_grad) {
  tg::Generator gen(seed);
  return tg::Tensor(tg::randn(shape, gen), requires_grad);
}

void clear_grads(std::initializer_list<tg::Tensor> ts) {
  for (const tg::Tensor& t : ts) t.node()->grad = tg::Array();
}

void set_flops(benchmark::State& state, double gflop_per_call) {
  state.counters["gflop"] = gflop_per_call;
  state.counters["GFLOP/s"] = benchmark::Counter(
      gflop_per_call * 1e9 * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

double conv_gflop(const tg::Shape& x, const tg::Shape& w, const tg::Conv2dOptions& o) {
  const tg::Conv2dGeometry g = tg::conv2d_geometry(x, w, o);
  // per output value: Cin/groups * Kh * Kw multiply-adds (w[1] is Cin/groups)
  return 2.0 * static_cast<double>(g.batch * g.c_out * g.pixels_out() * w[1] * w[2] * w[3]) / 1e9;
}

// Memory-bound kernels: bytes that must move at least once (each input read, each output written), as a rate.
void set_bytes(benchmark::State& state, double bytes_per_call) {
  state.counters["GB/s"] = benchmark::Counter(bytes_per_call * static_cast<double>(state.iterations()),
                                              benchmark::Counter::kIsRate);
}

void conv_forward(benchmark::State& state, const ConvCase* c) {
  const tg::Tensor x = random(c->x, 1, false), w = random(c->w, 2, false), b = random({c->w[0]}, 3, false);
  tg::NoGradGuard no_grad;
  for (auto _ : state) {
    const tg::Tensor y = tg::conv2d(x, w, b, c->options);  // named: value() of a temporary would be a copy
    benchmark::DoNotOptimize(y.value().data());
  }
  set_flops(state, conv_gflop(c->x, c->w, c->options));
}

void conv_forward_backward(benchmark::State& state, const ConvCase* c) {
  const tg::Tensor x = random(c->x, 1, true), w = random(c->w, 2, true), b = random({c->w[0]}, 3, true);
  const tg::Conv2dGeometry g = tg::conv2d_geometry(c->x, c->w, c->options);
  const tg::Array dout = tg::randn({g.batch, g.c_out, g.h_out, g.w_out});
  for (auto _ : state) {
    clear_grads({x, w, b});
    tg::conv2d(x, w, b, c->options).backward(dout);
    benchmark::DoNotOptimize(x.grad().data());
  }
  set_flops(state, 3 * conv_gflop(c->x, c->w, c->options));
}

// The ceiling: one SGEMM of the im2col shape per image, [Cout, K] x [K, Hout*Wout], the images split over
// tapegrad's threads as conv2d_im2col_forward splits its chunks of images (each thread its own output).
void conv_sgemm(benchmark::State& state, const ConvCase* c) {
  const tg::Conv2dGeometry g = tg::conv2d_geometry(c->x, c->w, c->options);
  const std::size_t k = g.patch(), hw = g.pixels_out();
  const tg::Array a = tg::randn({g.c_out, k}), cols = tg::randn({k, hw});
  tg::Array out = tg::Array::from_shape({static_cast<std::size_t>(tg::num_threads()), g.c_out, hw});
  for (auto _ : state) {
    tg::parallel_for(static_cast<std::size_t>(tg::num_threads()), [&](std::size_t t0, std::size_t t1) {
      for (std::size_t t = t0; t < t1; ++t) {
        const std::size_t n0 = t * g.batch / tg::num_threads(), n1 = (t + 1) * g.batch / tg::num_threads();
        for (std::size_t n = n0; n < n1; ++n) {
          tg::sgemm(false, false, g.c_out, hw, k, 1.f, a.data(), cols.data(), 0.f,
                    out.data() + t * g.c_out * hw);
        }
      }
    });
    benchmark::DoNotOptimize(out.data());
  }
  set_flops(state, conv_gflop(c->x, c->w, c->options));
}

struct PoolCase {
  const char* name;
  tg::Shape x;
  int kernel, stride;
};
const PoolCase kPools[] = {{"maxpool 32x3x28x28 k4 s2", {32, 3, 28, 28}, 4, 2},
                           {"maxpool 64x64x24x24 k2 s2", {64, 64, 24, 24}, 2, 2}};

void pool_forward(benchmark::State& state, const PoolCase* c) {
  const tg::Tensor x = random(c->x, 1, false);
  const tg::MaxPool2dOptions o{.kernel = {c->kernel, c->kernel}, .stride = {c->stride, c->stride}};
  tg::NoGradGuard no_grad;
  for (auto _ : state) {
    const tg::Tensor y = tg::max_pool2d(x, o);  // named: value() of a temporary would be a copy
    benchmark::DoNotOptimize(y.value().data());
  }
  const tg::Pool2dGeometry g = tg::max_pool2d_geometry(c->x, o);
  set_flops(state, static_cast<double>(g.planes * g.h_out * g.w_out * g.kh * g.kw) / 1e9);
}

void pool_forward_backward(benchmark::State& state, const PoolCase* c) {
  const tg::Tensor x = random(c->x, 1, true);
  const tg::MaxPool2dOptions o{.kernel = {c->kernel, c->kernel}, .stride = {c->stride, c->stride}};
  const tg::Pool2dGeometry g = tg::max_pool2d_geometry(c->x, o);
  const tg::Array dout = tg::randn({c->x[0], c->x[1], g.h_out, g.w_out});
  for (auto _ : state) {
    clear_grads({x});
    tg::max_pool2d(x, o).backward(dout);
    benchmark::DoNotOptimize(x.grad().data());
  }
  set_flops(state, 2.0 * static_cast<double>(g.planes * g.h_out * g.w_out * g.kh * g.kw) / 1e9);
}

// The machine's memory bandwidth as these kernels see it: a copy of a 128x64x16x16 float array (8 MiB read,
// 8 MiB written), split over the threads like the kernels.
void memory_copy(benchmark::State& state) {
  const tg::Array src = tg::randn({128, 64, 16, 16});
  tg::Array dst = tg::Array::from_shape({128, 64, 16, 16});
  for (auto _ : state) {
    tg::parallel_for(src.size(), [&](std::size_t i0, std::size_t i1) {
      std::memcpy(dst.data() + i0, src.data() + i0, (i1 - i0) * sizeof(float));
    });
    benchmark::DoNotOptimize(dst.data());
  }
  set_flops(state, 0);
  set_bytes(state, 2.0 * static_cast<double>(src.size() * sizeof(float)));
}

// batch norm in training mode, [128, 64, 16, 16]: "gflop" counts ~10 flops per element of forward (as
// bench_torch.py); the bytes are x read and y written (forward), dy and x read and dx written (backward).
constexpr std::size_t kBnElements = 128 * 64 * 16 * 16;
void batchnorm_forward(benchmark::State& state) {
  const tg::Tensor x = random({128, 64, 16, 16}, 1, false), w = random({64}, 2, false),
                   b = random({64}, 3, false);
  const tg::Tensor rm(tg::Array(xt::zeros<float>({64}))), rv(tg::Array(xt::ones<float>({64})));
  tg::NoGradGuard no_grad;
  for (auto _ : state) {
    const tg::Tensor y = tg::batch_norm2d(x, w, b, {.training = true, .running_mean = rm, .running_var = rv});
    benchmark::DoNotOptimize(y.value().data());
  }
  set_flops(state, 10.0 * kBnElements / 1e9);
  set_bytes(state, 2.0 * kBnElements * sizeof(float));
}

void batchnorm_forward_backward(benchmark::State& state) {
  const tg::Tensor x = random({128, 64, 16, 16}, 1, true), w = random({64}, 2, true),
                   b = random({64}, 3, true);
  const tg::Tensor rm(tg::Array(xt::zeros<float>({64}))), rv(tg::Array(xt::ones<float>({64})));
  const tg::Array dout = tg::randn({128, 64, 16, 16});
  for (auto _ : state) {
    clear_grads({x, w, b});
    tg::batch_norm2d(x, w, b, {.training = true, .running_mean = rm, .running_var = rv}).backward(dout);
    benchmark::DoNotOptimize(x.grad().data());
  }
  set_flops(state, 2 * 10.0 * kBnElements / 1e9);
  set_bytes(state, 5.0 * kBnElements * sizeof(float));
}

// Average pools: "gflop" counts one add per window cell (as bench_torch.py); bytes: x read, y written.
struct AvgCase {
  const char* name;
  tg::Shape x;
  bool global;
};
const AvgCase kAvgPools[] = {{"avgpool 128x64x16x16 k2 s2", {128, 64, 16, 16}, false},
                             {"global avgpool 128x128x8x8", {128, 128, 8, 8}, true}};

tg::Tensor avg_pool(const AvgCase* c, const tg::Tensor& x) {
  return c->global ? tg::global_avg_pool2d(x) : tg::avg_pool2d(x, {.kernel = {2, 2}});
}

void avgpool_forward(benchmark::State& state, const AvgCase* c) {
  const tg::Tensor x = random(c->x, 1, false);
  tg::NoGradGuard no_grad;
  std::size_t out_size = 0;
  for (auto _ : state) {
    const tg::Tensor y = avg_pool(c, x);
    out_size = y.numel();
    benchmark::DoNotOptimize(y.value().data());
  }
  const auto in_size = static_cast<double>(x.numel());
  set_flops(state, in_size / 1e9);
  set_bytes(state, (in_size + static_cast<double>(out_size)) * sizeof(float));
}

void avgpool_forward_backward(benchmark::State& state, const AvgCase* c) {
  const tg::Tensor x = random(c->x, 1, true);
  tg::Array dout;
  {
    tg::NoGradGuard no_grad;
    dout = tg::randn(avg_pool(c, x).shape());
  }
  for (auto _ : state) {
    clear_grads({x});
    avg_pool(c, x).backward(dout);
    benchmark::DoNotOptimize(x.grad().data());
  }
  const auto in_size = static_cast<double>(x.numel()), out_size = static_cast<double>(dout.size());
  set_flops(state, 2 * in_size / 1e9);
  set_bytes(state, 2 * (in_size + out_size) * sizeof(float));
}

void linear_forward(benchmark::State& state) {
  const tg::Tensor x = random({64, 9216}, 1, false), w = random({128, 9216}, 2, false),
                   b = random({128}, 3, false);
  tg::NoGradGuard no_grad;
  for (auto _ : state) {
    const tg::Tensor y = tg::linear(x, w, b);  // named: value() of a temporary would be a copy
    benchmark::DoNotOptimize(y.value().data());
  }
  set_flops(state, 2.0 * 64 * 9216 * 128 / 1e9);
}

void linear_forward_backward(benchmark::State& state) {
  const tg::Tensor x = random({64, 9216}, 1, true), w = random({128, 9216}, 2, true),
                   b = random({128}, 3, true);
  const tg::Array dout = tg::randn({64, 128});
  for (auto _ : state) {
    clear_grads({x, w, b});
    tg::linear(x, w, b).backward(dout);
    benchmark::DoNotOptimize(w.grad().data());
  }
  set_flops(state, 3 * 2.0 * 64 * 9216 * 128 / 1e9);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1;
  for (int i = 1;
       i + 1 < argc;) {  // --threads N and --conv-algorithm A (ours), the rest is Google Benchmark's
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--threads") {
      threads = std::stoi(value);
    } else if (flag == "--conv-algorithm") {
      if (value != "auto" && value != "im2col" && value != "direct") {
        std::fprintf(stderr, "bench_layers: --conv-algorithm must be auto, im2col or direct, got %s\n",
                     value.c_str());
        return 2;
      }
      tg::set_conv_algorithm(value == "im2col"   ? tg::ConvAlgorithm::Im2col
                             : value == "direct" ? tg::ConvAlgorithm::Direct
                                                 : tg::ConvAlgorithm::Auto);
    } else {
      ++i;
      continue;
    }
    for (int j = i; j + 2 <= argc; ++j) argv[j] = argv[j + 2];
    argc -= 2;
  }
  tg::set_num_threads(threads);
  for (const ConvCase& c : kConvs) {
    benchmark::RegisterBenchmark((std::string(c.name) + "/fwd").c_str(), conv_forward, &c)
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark((std::string(c.name) + "/fwd+bwd").c_str(), conv_forward_backward, &c)
        ->Unit(benchmark::kMicrosecond);
    if (c.options.groups == 1) {  // a grouped conv's im2col GEMMs are per group: no one ceiling to show
      benchmark::RegisterBenchmark((std::string(c.name) + "/sgemm").c_str(), conv_sgemm, &c)
          ->Unit(benchmark::kMicrosecond);
    }
  }
  for (const PoolCase& c : kPools) {
    benchmark::RegisterBenchmark((std::string(c.name) + "/fwd").c_str(), pool_forward, &c)
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark((std::string(c.name) + "/fwd+bwd").c_str(), pool_forward_backward, &c)
        ->Unit(benchmark::kMicrosecond);
  }
  benchmark::RegisterBenchmark("memory copy 8 MiB/fwd", memory_copy)->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("batchnorm2d 128x64x16x16 train/fwd", batchnorm_forward)
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("batchnorm2d 128x64x16x16 train/fwd+bwd", batchnorm_forward_backward)
      ->Unit(benchmark::kMicrosecond);
  for (const AvgCase& c : kAvgPools) {
    benchmark::RegisterBenchmark((std::string(c.name) + "/fwd").c_str(), avgpool_forward, &c)
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark((std::string(c.name) + "/fwd+bwd").c_str(), avgpool_forward_backward, &c)
        ->Unit(benchmark::kMicrosecond);
  }
  benchmark::RegisterBenchmark("linear 64x9216 -> 128/fwd", linear_forward)->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("linear 64x9216 -> 128/fwd+bwd", linear_forward_backward)
      ->Unit(benchmark::kMicrosecond);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
