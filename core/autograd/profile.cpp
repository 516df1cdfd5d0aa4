#include "core/autograd/profile.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <map>
#include <mutex>
#include <vector>

#include "core/autograd/observer.hpp"
#include "core/base/clock.hpp"

namespace tg {
namespace {

struct Times {
  std::size_t calls = 0;
  double forward = 0, backward = 0;
};

struct Profile {
  std::mutex mutex;
  std::map<std::string, Times> ops, layers;
};

Profile& profile() {
  static Profile p;
  return p;
}

std::atomic<bool> g_on{false};
thread_local double t_last_mark = 0;  // the previous op's (or layer start's) time on this thread
// The open LayerScopes on this thread, innermost last (a Residual's body inside the Residual inside the
// model).
struct OpenLayer {
  double start = 0;
  double children = 0;  // forward seconds of the layers nested in this one
};
thread_local std::vector<OpenLayer> t_open_layers;

class Profiler final : public TapeObserver {
 public:
  void forward(const ForwardEvent& e) override {
    const double t = steady_seconds(), elapsed = t - t_last_mark;
    t_last_mark = t;
    std::lock_guard<std::mutex> lock(profile().mutex);
    Times& times = profile().ops[e.op];
    ++times.calls;
    times.forward += elapsed;  // layer forward times come whole from layer_end
  }

  void backward(const BackwardEvent& e) override {
    std::lock_guard<std::mutex> lock(profile().mutex);
    profile().ops[e.entry.op].backward += e.seconds;
    if (!e.entry.layer.empty()) profile().layers[e.entry.layer].backward += e.seconds;
  }

  void layer_begin(const std::string&) override {
    t_last_mark = steady_seconds();
    t_open_layers.push_back({t_last_mark, 0});
  }

  // A layer's row gets its own time: a container (a Residual) counts its add, not its children's work, which
  // is in their rows; so the rows add up to the forward, and the shares to 100% of it.
  void layer_end(const std::string& layer) override {
    if (t_open_layers.empty()) return;  // profiling was turned on inside this layer
    const double seconds = steady_seconds() - t_open_layers.back().start;
    const double self = seconds - t_open_layers.back().children;
    t_open_layers.pop_back();
    if (!t_open_layers.empty()) t_open_layers.back().children += seconds;
    std::lock_guard<std::mutex> lock(profile().mutex);
    Times& times = profile().layers[layer];
    ++times.calls;
    times.forward += self;
  }
};

Profiler g_profiler;

std::string table(const char* title, const std::map<std::string, Times>& rows) {
  std::vector<std::pair<std::string, Times>> sorted(rows.begin(), rows.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    return a.second.forward + a.second.backward > b.second.forward + b.second.backward;
  });
  double total = 0;
  for (const auto& [name, t] : sorted) total += t.forward + t.backward;
  std::string out;
  char line[200];
  std::snprintf(line, sizeof line, "%-28s %10s %12s %12s %8s\n", title, "calls", "forward ms", "backward ms",
                "share");
  out += line;
  for (const auto& [name, t] : sorted) {
    std::snprintf(line, sizeof line, "%-28s %10zu %12.1f %12.1f %7.1f%%\n", name.c_str(), t.calls,
                  1e3 * t.forward, 1e3 * t.backward,
                  total > 0 ? 100 * (t.forward + t.backward) / total : 0.0);
    out += line;
  }
  return out;
}

}  // namespace

void set_profiling(bool on) {
  g_on = on;
  t_last_mark = steady_seconds();
  t_open_layers.clear();
  if (on) {
    add_global_tape_observer(&g_profiler);
  } else {
    remove_global_tape_observer(&g_profiler);
  }
}
bool profiling() { return g_on; }

void reset_profile() {
  std::lock_guard<std::mutex> lock(profile().mutex);
  profile().ops.clear();
  profile().layers.clear();
}

std::string profile_report() {
  std::lock_guard<std::mutex> lock(profile().mutex);
  return table("op", profile().ops) + "\n" + table("layer", profile().layers);
}

}  // namespace tg
