// The arithmetic peak of this CPU's multiply-add instructions, measured: vfmadd231ps (fp32, 16 lanes of a
// zmm register: 32 flop) against vdpbf16ps (AVX512_BF16: 32 bf16 pairs multiplied and added into 16 fp32
// lanes: 64 flop), and vpdpbusd (AVX512_VNNI: 64 u8 x s8 products into 16 int32 lanes: 128 ops), each in
// 512-bit and 256-bit form. Each loop runs kChains independent accumulators so that the instruction's latency
// is hidden and its throughput is what is timed; the operands stay in registers (no memory traffic).
//   bench_peak [--threads N] [--seconds S]     prints one JSON object per instruction and thread count
// A CPU without AVX512_BF16 or AVX512_VNNI reports those rows as absent (CPUID, checked at run time).
#include <immintrin.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr int kChains = 12;  // >= latency (4-6 cycles) x issue width (2 per cycle)
constexpr long kInner = 1 << 14;

using Clock = std::chrono::steady_clock;

// The timed loop of one instruction: kChains accumulators, each step `acc[c] = STEP(acc[c])`, until `seconds`
// passed; returns the seconds and sets `iterations`. A macro rather than a template with a lambda, so that
// the loop is compiled inside each function with that function's target instructions.
#define TG_PEAK_LOOP(VEC, SEED, STEP, SINK)                                             \
  VEC acc[kChains];                                                                     \
  for (int c = 0; c < kChains; ++c) acc[c] = SEED;                                      \
  const auto start = Clock::now();                                                      \
  iterations = 0;                                                                       \
  double elapsed = 0;                                                                   \
  do {                                                                                  \
    for (long i = 0; i < kInner; ++i) {                                                 \
      _Pragma("GCC unroll 16") for (int c = 0; c < kChains; ++c) acc[c] = STEP(acc[c]); \
    }                                                                                   \
    iterations += kInner;                                                               \
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();              \
  } while (elapsed < seconds);                                                          \
  for (int c = 0; c < kChains; ++c) g_sink = g_sink + SINK(acc[c]);                     \
  return elapsed

volatile double g_sink = 0;  // keeps the accumulators alive

struct Result {
  double ops_per_second;  // flop (or int ops) per second, all threads
};

// ops_per_instruction: 32 for a zmm FMA, 64 for a zmm vdpbf16ps, 128 for a zmm vpdpbusd.
template <class Body>
Result measure(int threads, double seconds, double ops_per_instruction, Body body) {
  std::vector<double> rates(static_cast<std::size_t>(threads));
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      long iterations = 0;
      const double elapsed = body(seconds, iterations);
      rates[static_cast<std::size_t>(t)] =
          static_cast<double>(iterations) * kChains * ops_per_instruction / elapsed;
    });
  }
  for (std::thread& th : pool) th.join();
  double total = 0;
  for (double r : rates) total += r;
  return {total};
}

__attribute__((target("avx512f,fma"))) double fma512(double seconds, long& iterations) {
  const __m512 a = _mm512_set1_ps(1.0000001f), b = _mm512_set1_ps(0.9999999f);
#define TG_STEP(x) _mm512_fmadd_ps(a, b, x)
#define TG_SINK(x) _mm512_reduce_add_ps(x)
  TG_PEAK_LOOP(__m512, _mm512_set1_ps(1.f), TG_STEP, TG_SINK);
#undef TG_STEP
#undef TG_SINK
}

__attribute__((target("avx2,fma"))) double fma256(double seconds, long& iterations) {
  const __m256 a = _mm256_set1_ps(1.0000001f), b = _mm256_set1_ps(0.9999999f);
#define TG_STEP(x) _mm256_fmadd_ps(a, b, x)
#define TG_SINK(x) _mm256_cvtss_f32(x)
  TG_PEAK_LOOP(__m256, _mm256_set1_ps(1.f), TG_STEP, TG_SINK);
#undef TG_STEP
#undef TG_SINK
}

__attribute__((target("avx512f,avx512bf16"))) double bf16_512(double seconds, long& iterations) {
  const __m512bh a = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1.f), _mm512_set1_ps(1.f));
  const __m512bh b = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3f), _mm512_set1_ps(1e-3f));
#define TG_STEP(x) _mm512_dpbf16_ps(x, a, b)
#define TG_SINK(x) _mm512_reduce_add_ps(x)
  TG_PEAK_LOOP(__m512, _mm512_set1_ps(1.f), TG_STEP, TG_SINK);
#undef TG_STEP
#undef TG_SINK
}

__attribute__((target("avx512f,avx512vl,avx512bf16"))) double bf16_256(double seconds, long& iterations) {
  const __m256bh a = _mm256_cvtne2ps_pbh(_mm256_set1_ps(1.f), _mm256_set1_ps(1.f));
  const __m256bh b = _mm256_cvtne2ps_pbh(_mm256_set1_ps(1e-3f), _mm256_set1_ps(1e-3f));
#define TG_STEP(x) _mm256_dpbf16_ps(x, a, b)
#define TG_SINK(x) _mm256_cvtss_f32(x)
  TG_PEAK_LOOP(__m256, _mm256_set1_ps(1.f), TG_STEP, TG_SINK);
#undef TG_STEP
#undef TG_SINK
}

__attribute__((target("avx512f,avx512vnni"))) double vnni512(double seconds, long& iterations) {
  const __m512i a = _mm512_set1_epi8(1), b = _mm512_set1_epi8(1);
#define TG_STEP(x) _mm512_dpbusd_epi32(x, a, b)
#define TG_SINK(x) static_cast<double>(_mm512_reduce_add_epi32(x))
  TG_PEAK_LOOP(__m512i, _mm512_setzero_si512(), TG_STEP, TG_SINK);
#undef TG_STEP
#undef TG_SINK
}

__attribute__((target("avx512f,avx512vl,avx512vnni"))) double vnni256(double seconds, long& iterations) {
  const __m256i a = _mm256_set1_epi8(1), b = _mm256_set1_epi8(1);
#define TG_STEP(x) _mm256_dpbusd_epi32(x, a, b)
#define TG_SINK(x) static_cast<double>(_mm256_extract_epi32(x, 0))
  TG_PEAK_LOOP(__m256i, _mm256_setzero_si256(), TG_STEP, TG_SINK);
#undef TG_STEP
#undef TG_SINK
}

}  // namespace

int main(int argc, char** argv) {
  int max_threads = 2;
  double seconds = 1.0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--threads") == 0) max_threads = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--seconds") == 0) seconds = std::atof(argv[i + 1]);
  }
  if (max_threads < 1 || !(seconds > 0)) {
    std::fprintf(stderr, "usage: bench_peak [--threads N] [--seconds S]\n");
    return 2;
  }
  __builtin_cpu_init();
  const bool has512 = __builtin_cpu_supports("avx512f");
  const bool has_bf16 = has512 && __builtin_cpu_supports("avx512bf16");
  const bool has_vnni = has512 && __builtin_cpu_supports("avx512vnni");
  struct Row {
    const char* name;
    double ops;  // per instruction
    bool available;
    double (*body)(double, long&);
  };
  const Row rows[] = {
      {"vfmadd231ps zmm (fp32)", 32, has512, fma512},     {"vfmadd231ps ymm (fp32)", 16, true, fma256},
      {"vdpbf16ps zmm (bf16)", 64, has_bf16, bf16_512},   {"vdpbf16ps ymm (bf16)", 32, has_bf16, bf16_256},
      {"vpdpbusd zmm (u8 x s8)", 128, has_vnni, vnni512}, {"vpdpbusd ymm (u8 x s8)", 64, has_vnni, vnni256},
  };
  for (int threads = 1; threads <= max_threads; ++threads) {
    for (const Row& row : rows) {
      if (!row.available) {
        std::printf("{\"instruction\": \"%s\", \"threads\": %d, \"available\": false}\n", row.name, threads);
        continue;
      }
      const Result r = measure(threads, seconds, row.ops, row.body);
      std::printf("{\"instruction\": \"%s\", \"threads\": %d, \"available\": true, \"gops\": %.1f}\n",
                  row.name, threads, r.ops_per_second / 1e9);
      std::fflush(stdout);
    }
  }
  return 0;
}
