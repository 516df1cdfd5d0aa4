// Anomaly detection: a tape observer that checks every op's output and every backward step's gradients for
// NaN or Inf, and throws tg::Error naming the op, its layer (and that layer's model-file line, if it has
// one) and its tape position. Per thread.
#include <cmath>
#include <cstddef>
#include <string>

#include "core/autograd/observer.hpp"
#include "core/autograd/tape.hpp"
#include "core/base/error.hpp"

namespace tg {
namespace {

// The first non-finite element of a, or -1.
std::ptrdiff_t first_non_finite(const Array& a) {
  const float* p = a.data();
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(p[i])) return static_cast<std::ptrdiff_t>(i);
  }
  return -1;
}

// "'conv2d' in layer 3.Conv2D [lenet.tg:5 conv2d 16 5] (tape entry #7)"; the layer and its model-file line
// only when there are some. Formatted only when an anomaly is found.
std::string where(const std::string& op, const std::string& layer, const std::string& source,
                  std::size_t position) {
  std::string out = "'" + op + "'";
  if (!layer.empty()) out += " in layer " + layer;
  if (!source.empty()) out += " [" + source + "]";
  return out + " (tape entry #" + std::to_string(position) + ")";
}

class AnomalyDetector final : public TapeObserver {
 public:
  void forward(const ForwardEvent& e) override {
    if (const std::ptrdiff_t bad = first_non_finite(e.output); bad >= 0) {
      fail("detect_anomaly: the output of ", where(e.op, e.layer, e.source, e.position), " has ",
           e.output.data()[bad], " at flat index ", bad, " (shape ", shape_str(e.output.shape()), ")");
    }
  }

  // Only the gradients the tape will use: inputs that require grad, and not "no gradient".
  void backward(const BackwardEvent& e) override {
    for (std::size_t k = 0; k < e.grads.size(); ++k) {
      const Node& input = *e.entry.inputs[k];
      if (!input.requires_grad || is_no_gradient(e.grads[k], shape_of(input))) continue;
      if (const std::ptrdiff_t bad = first_non_finite(e.grads[k]); bad >= 0) {
        fail("detect_anomaly: the backward of ",
             where(e.entry.op, e.entry.layer, e.entry.source ? *e.entry.source : std::string(), e.position),
             " gave ", e.grads[k].data()[bad], " in the gradient of input ", k, " at flat index ", bad);
      }
    }
  }
};

AnomalyDetector g_detector;  // holds no state: one for every thread that turns detection on
thread_local bool t_detect_anomaly = false;

}  // namespace

void set_detect_anomaly(bool on) {
  if (on == t_detect_anomaly) return;
  t_detect_anomaly = on;
  if (on) {
    add_tape_observer(&g_detector);
  } else {
    remove_tape_observer(&g_detector);
  }
}

bool detect_anomaly() { return t_detect_anomaly; }

}  // namespace tg
