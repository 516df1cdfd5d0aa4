// The process-wide precision and the CPU's bf16 support (precision.hpp).
#include "core/runtime/precision.hpp"

#include <atomic>
#include <cstdlib>

#include "core/base/error.hpp"

namespace tg {
namespace {

std::atomic<Precision> g_precision{Precision::fp32};
std::atomic<bool> g_bf16_hidden{false};

}  // namespace

std::string bf16_unsupported_reason() {
#if defined(__AVX512BF16__) && defined(__AVX512BW__)
  if (g_bf16_hidden.load()) return "this CPU's AVX512_BF16 instructions are hidden (force_bf16_unsupported)";
  if (const char* env = std::getenv("TAPEGRAD_NO_BF16"); env && *env && std::string(env) != "0")
    return "this CPU's AVX512_BF16 instructions are hidden (TAPEGRAD_NO_BF16 is set)";
  if (!__builtin_cpu_supports("avx512bf16"))
    return "this CPU has no AVX512_BF16 instructions (vdpbf16ps: Cooper Lake, Sapphire Rapids, Zen 4 and "
           "later)";
  return "";
#else
  return "this build does not target AVX512_BF16 (configure with TAPEGRAD_NATIVE=ON on a CPU that has it: "
         "Cooper Lake, Sapphire Rapids, Zen 4 and later)";
#endif
}

bool bf16_supported() { return bf16_unsupported_reason().empty(); }

void force_bf16_unsupported(bool hidden) { g_bf16_hidden.store(hidden); }

void set_precision(Precision p) {
  if (p == Precision::bf16 && !bf16_supported())
    fail("precision bf16: ", bf16_unsupported_reason(), "; train with --precision fp32");
  g_precision.store(p);
}

void restore_precision(Precision p) { g_precision.store(p); }

Precision precision() { return g_precision.load(std::memory_order_relaxed); }

Precision parse_precision(const std::string& text) {
  if (text == "fp32") return Precision::fp32;
  if (text == "bf16") return Precision::bf16;
  if (text == "fp16")
    fail(
        "precision: fp16 is not supported (CPUs have no fp16 multiply-add for training); expected fp32 or "
        "bf16, got 'fp16'");
  fail("precision: expected fp32 or bf16, got '", text, "'");
}

const char* precision_name(Precision p) { return p == Precision::bf16 ? "bf16" : "fp32"; }

}  // namespace tg
