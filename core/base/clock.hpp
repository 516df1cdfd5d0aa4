// The monotonic clock in seconds, for the tape's and the profiler's timings (the base room: std only).
#pragma once

#include <chrono>

namespace tg {

inline double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace tg
