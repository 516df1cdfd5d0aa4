// Observers of the tape: code that watches ops being recorded and replayed without being woven into the
// tape. Anomaly detection (anomaly.cpp) and the profiler (profile.cpp) are observers; so can a user's be.
//
//   struct CountOps : tg::TapeObserver {
//     int n = 0;
//     void forward(const tg::ForwardEvent&) override { ++n; }
//   } counter;
//   tg::add_tape_observer(&counter);  ...  tg::remove_tape_observer(&counter);
//
// With no observer registered, recording and backward pay one branch per op: nothing is timed or formatted.
#pragma once

#include <string>
#include <vector>

#include "core/autograd/tape.hpp"
#include "core/autograd/tensor.hpp"

namespace tg {

// An op made through make_op, right after its forward ran and before its output tensor exists: recorded on
// the tape or not (NoGradGuard, or no input requires grad).
struct ForwardEvent {
  const std::string& op;              // "conv2d"
  const std::string& layer;           // "3.Conv2D"; empty outside layers
  const std::string& source;          // the layer's model-file line, "lenet.tg:5 conv2d 16 5"; or empty
  std::size_t position;               // the tape index its entry gets (or would get) on this thread's tape
  const std::vector<Tensor>& inputs;  // as passed to make_op
  const Array& output;  // the op's output value; empty (0 elements) for an unstored one (make_unstored_op)
  bool recorded;        // an entry is appended to the tape
};

// A tape entry whose backward function just ran during Tensor::backward(), before its gradients are added
// into its inputs. Within one backward(), entries come newest to oldest (position decreasing).
struct BackwardEvent {
  const TapeEntry& entry;           // op, layer, inputs (still held), output
  std::size_t position;             // the entry's index on this thread's tape
  const std::vector<Array>& grads;  // one per input, in input order; see is_no_gradient() for "none"
  double seconds;                   // how long the backward function took
};

// Override what you need. forward and backward may throw (tg::Error via fail()): the op, or the backward()
// under way, then fails with that error. layer_end runs in a destructor and must not throw. Callbacks must
// not record ops (make_op) themselves.
class TapeObserver {
 public:
  virtual ~TapeObserver() = default;
  virtual void forward(const ForwardEvent& /*event*/) {}
  virtual void backward(const BackwardEvent& /*event*/) {}
  // A LayerScope opens / closes (Sequential opens one around each layer's forward).
  virtual void layer_begin(const std::string& /*layer*/) {}
  virtual void layer_end(const std::string& /*layer*/) {}
};

// Observers are not owned: remove one before destroying it. Adding one twice is a no-op; so is removing one
// that is not registered. Callbacks run on the thread that records or replays the op.
void add_tape_observer(TapeObserver* observer);  // watches this thread's tape only (as detect_anomaly)
void remove_tape_observer(TapeObserver* observer);
void add_global_tape_observer(TapeObserver* observer);     // watches every thread's tape (as the profiler);
void remove_global_tape_observer(TapeObserver* observer);  // its callbacks may run on several threads at once

}  // namespace tg
