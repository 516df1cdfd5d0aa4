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

// With memory reuse on, asks the kernel for transparent huge pages (2 MiB) on the part of the heap grown
// since the last call, before anything touches it: the first steps of a run would otherwise take one page
// fault per 4 KiB of every new activation (121,000 faults, a third of the first 1,024 images of cifarnet;
// glibc's own GLIBC_TUNABLES=glibc.malloc.hugetlb=1 does the same but only from the environment). Cheap
// when the heap did not grow (glibc's cached break, one comparison): parallel_for calls it, i.e. after an op
// allocated its output and before its kernel writes it.
void advise_huge_pages();

// Hands the heap's free pages back to the kernel (glibc's malloc_trim), keeping everything allocated. With
// memory reuse on, freed memory is kept for the next step; call this where a program switches to tensors of
// other sizes (training at batch 128, then evaluation at batch 1,000: without it the evaluation's buffers
// land beside the training step's free ones and the peak is their sum). `tapegrad train` and `eval` call it
// before each evaluation.
void release_free_memory();

}  // namespace tg
