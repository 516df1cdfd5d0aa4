// A per-op and per-layer profile, read from the tape: how long each op type and each layer took, forward and
// backward. Off by default (then it costs one branch per op).
//   tg::set_profiling(true); ... train ...; std::cout << tg::profile_report();
// Forward time of an op is the time since the previous op (or layer start) on this thread, i.e. the time
// its forward computation took just before it was recorded; backward time is measured around the op's
// backward function. Layer times come from Sequential.
#pragma once

#include <string>

namespace tg {

void set_profiling(bool on);
bool profiling();
void reset_profile();
// Two tables (by op type, by layer): calls, forward ms, backward ms, share of the total; slowest first.
std::string profile_report();

namespace profile_detail {  // hooks for the tape and Sequential
void op_recorded(const std::string& op, const std::string& layer);
void op_backward(const std::string& op, const std::string& layer, double seconds);
void layer_started();
void layer_forward(const std::string& layer, double seconds);
double now();
}  // namespace profile_detail

}  // namespace tg
