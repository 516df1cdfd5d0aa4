// A per-op and per-layer profile: how long each op type and each layer took, forward and backward. A tape
// observer (observer.hpp), off by default; then it costs nothing beyond the tape's one check per op.
//   tg::set_profiling(true); ... train ...; std::cout << tg::profile_report();
// Forward time of an op is the time since the previous op (or layer start) on this thread, i.e. the time
// its forward computation took just before it was recorded; backward time is measured around the op's
// backward function. Layer times are measured between a LayerScope's opening and closing (Sequential opens
// one around each layer), less the time of the layers nested inside it: a Residual's row is its add, its
// body's layers have their own rows ("3.body.0.Conv2D"), and the rows add up to the whole forward. Global:
// it watches every thread's tape.
#pragma once

#include <string>

namespace tg {

void set_profiling(bool on);
bool profiling();
void reset_profile();
// Two tables (by op type, by layer): calls, forward ms, backward ms, share of the total; slowest first.
std::string profile_report();

}  // namespace tg
