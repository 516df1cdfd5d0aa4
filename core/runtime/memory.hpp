// Memory reuse. A training step frees and re-allocates the same large buffers (activations, gradients)
// every step. glibc's defaults hand large freed blocks back to the kernel (mmap/munmap, heap trimming), so
// each step would page-fault them in afresh (~11 us per 4 KiB page here). tapegrad therefore asks glibc, once
// at load time, to keep freed memory for reuse: large blocks come from the heap and the heap is not trimmed.
// Peak memory is unchanged (a freed block is reused by the next step's block of the same size).
#pragma once

namespace tg {

// On by default (applied when the library loads). Off restores glibc's default thresholds.
void set_memory_reuse(bool on);
bool memory_reuse();

}  // namespace tg
