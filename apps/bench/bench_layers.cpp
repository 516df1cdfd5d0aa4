// bench_layers: layer micro-benchmarks of BENCHMARKS.md (figure 5) and, for each conv, OpenBLAS SGEMM on the
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

double conv_gflop(const tg::Conv2dGeometry& g) {
  return 2.0 * static_cast<double>(g.batch * g.c_out * g.pixels_out() * g.patch()) / 1e9;
}

void conv_forward(benchmark::State& state, const ConvCase* c) {
  const tg::Tensor x = random(c->x, 1, false), w = random(c->w, 2, false), b = random({c->w[0]}, 3, false);
  tg::NoGradGuard no_grad;
  for (auto _ : state) {
    const tg::Tensor y = tg::conv2d(x, w, b, c->options);  // named: value() of a temporary would be a copy
    benchmark::DoNotOptimize(y.value().data());
  }
  set_flops(state, conv_gflop(tg::conv2d_geometry(c->x, c->w, c->options)));
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
  set_flops(state, 3 * conv_gflop(g));
}

// The ceiling: one SGEMM of the im2col shape per image, [Cout, K] x [K, Hout*Wout], the images split over
// tapegrad's threads as conv2d_forward splits them (each thread its own output).
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
  set_flops(state, conv_gflop(g));
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
    benchmark::RegisterBenchmark((std::string(c.name) + "/sgemm").c_str(), conv_sgemm, &c)
        ->Unit(benchmark::kMicrosecond);
  }
  for (const PoolCase& c : kPools) {
    benchmark::RegisterBenchmark((std::string(c.name) + "/fwd").c_str(), pool_forward, &c)
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark((std::string(c.name) + "/fwd+bwd").c_str(), pool_forward_backward, &c)
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
