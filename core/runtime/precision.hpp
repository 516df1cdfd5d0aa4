// Mixed precision: the number format convolutions and linear layers multiply in. fp32 (the default) computes
// everything in float32. bf16 (`tapegrad train --precision bf16`) rounds the inputs of the convolutions
// (direct and im2col kernels) and of the linear layers' matrix products to bfloat16 in each pass, forward, dx
// and dweight, and sums their products in float32 with AVX512_BF16's vdpbf16ps (32 multiply-adds per
// instruction, 16 for an fp32 FMA). Everything else stays float32: the tensors on the tape, master weights,
// weight gradients, optimizer state and update, batch norm, loss, softmax, depthwise convs and matmul;
// checkpoints are float32. See docs/precision.md.
#pragma once

#include <string>

namespace tg {

enum class Precision { fp32, bf16 };

// Whether bf16 kernels can run here: this build targets AVX512_BF16 (the default -march=native on such a
// CPU) and CPUID reports it at run time, and neither force_bf16_unsupported nor the environment variable
// TAPEGRAD_NO_BF16 (set, not 0: the way to try a CPU without it) hides it.
bool bf16_supported();
// Why bf16 cannot run, in one sentence; "" when it can.
std::string bf16_unsupported_reason();
// For tests: behave as on a CPU without AVX512_BF16 (true) or as the CPU is (false).
void force_bf16_unsupported(bool hidden);

// The precision of every conv that follows (process-wide, like set_conv_algorithm). bf16 where it cannot
// run: tg::Error with bf16_unsupported_reason().
void set_precision(Precision p);
Precision precision();
// set_precision without the support check: what PrecisionGuard's end puts back (it was running already).
void restore_precision(Precision p);

// "fp32" or "bf16"; anything else (fp16 included) is a tg::Error naming the accepted values.
Precision parse_precision(const std::string& text);
const char* precision_name(Precision p);

// Sets a precision for a scope and restores the previous one at its end.
class PrecisionGuard {
 public:
  explicit PrecisionGuard(Precision p) : previous_(precision()) { set_precision(p); }
  ~PrecisionGuard() { restore_precision(previous_); }
  PrecisionGuard(const PrecisionGuard&) = delete;
  PrecisionGuard& operator=(const PrecisionGuard&) = delete;

 private:
  Precision previous_;
};

}  // namespace tg
