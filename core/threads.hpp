// The framework's thread count: every parallel loop of ours and OpenBLAS's own threads.
#pragma once

namespace tg {

// Sets all of the framework's threads, OpenBLAS's included; n >= 1, else tg::Error.
void set_num_threads(int n);
// Default: the machine's cores.
int num_threads();

}  // namespace tg
