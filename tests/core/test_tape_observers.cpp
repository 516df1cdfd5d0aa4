// Observers of the tape (core/autograd/observer.hpp): what a user's observer sees, and the two built-in ones,
// anomaly detection and the profiler. Also: print_tape formats inputs when it prints, not when ops record.
#include <doctest/doctest.h>

#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "tapegrad.hpp"
#include "test_util.hpp"

using tg::Array;
using tg::Tensor;

namespace {

// No label is formatted when an op is recorded: the entry has no field to keep one in.
template <class Entry>
constexpr bool kHasInputLabels = requires(Entry e) {
  e.input_labels;
};
static_assert(!kHasInputLabels<tg::TapeEntry>);
// Nor a layer's model-file line: the entry shares the module's formatted text through a pointer.
static_assert(std::is_same_v<decltype(tg::TapeEntry::source), std::shared_ptr<const std::string>>);

struct Recorder : tg::TapeObserver {
  std::vector<std::string> forward_ops, forward_layers, forward_sources, backward_ops, backward_sources,
      layer_events;
  std::vector<std::size_t> forward_positions, backward_positions;
  std::vector<bool> recorded;
  void forward(const tg::ForwardEvent& e) override {
    forward_ops.push_back(e.op);
    forward_layers.push_back(e.layer);
    forward_sources.push_back(e.source);
    forward_positions.push_back(e.position);
    recorded.push_back(e.recorded);
  }
  void backward(const tg::BackwardEvent& e) override {
    backward_ops.push_back(e.entry.op);
    backward_positions.push_back(e.position);
    backward_sources.push_back(e.entry.source ? *e.entry.source : "");
    CHECK(e.grads.size() == e.entry.inputs.size());
    CHECK(e.seconds >= 0.0);
  }
  void layer_begin(const std::string& layer) override { layer_events.push_back("begin " + layer); }
  void layer_end(const std::string& layer) override { layer_events.push_back("end " + layer); }
};

// Registers an observer on this thread's tape for the scope's lifetime.
struct Observing {
  tg::TapeObserver* observer;
  explicit Observing(tg::TapeObserver* o) : observer(o) { tg::add_tape_observer(o); }
  ~Observing() { tg::remove_tape_observer(observer); }
};

// The calls column of `name`'s row in the profile report's "op" or "layer" table; -1 when it has no row.
long calls(const std::string& report, const std::string& table, const std::string& name) {
  std::istringstream lines(report);
  std::string line, current;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string first;
    long n = -1;
    fields >> first;
    if (first == "op" || first == "layer") {
      current = first;
    } else if (current == table && first == name && fields >> n) {
      return n;
    }
  }
  return -1;
}

}  // namespace

TEST_CASE(
    "a tape observer sees each op's forward (op, layer, position) and each entry's backward, newest first") {
  tg::clear_tape();
  tg::manual_seed(3);
  tg::Sequential model(tg::Linear(2, 3), tg::ReLU());
  Recorder recorder;
  {
    Observing observing(&recorder);
    Tensor loss = tg::sum(model(Tensor(Array{{1.f, -1.f}})));
    loss.backward();
    tg::NoGradGuard no_grad;
    (void)tg::relu(Tensor(Array{1.f}));  // made through make_op, not recorded
  }
  CHECK(recorder.forward_ops == std::vector<std::string>{"linear", "relu", "sum", "relu"});
  CHECK(recorder.forward_layers == std::vector<std::string>{"0.Linear", "1.ReLU", "", ""});
  CHECK(recorder.forward_positions == std::vector<std::size_t>{0, 1, 2, 0});
  CHECK(recorder.recorded == std::vector<bool>{true, true, true, false});
  CHECK(recorder.backward_ops == std::vector<std::string>{"sum", "relu", "linear"});
  CHECK(recorder.backward_positions == std::vector<std::size_t>{2, 1, 0});
  CHECK(recorder.layer_events ==
        std::vector<std::string>{"begin 0.Linear", "end 0.Linear", "begin 1.ReLU", "end 1.ReLU"});

  // removed: sees nothing more
  (void)tg::sum(model(Tensor(Array{{1.f, 1.f}})));
  CHECK(recorder.forward_ops.size() == 4);
  tg::clear_tape();
}

TEST_CASE("a global tape observer sees the ops of every thread") {
  Recorder recorder;
  tg::add_global_tape_observer(&recorder);
  std::thread([] {
    Tensor x(Array{1.f, 2.f}, true);
    (void)tg::exp(x);
    tg::clear_tape();
  }).join();
  tg::remove_global_tape_observer(&recorder);
  (void)tg::exp(Tensor(Array{1.f}));
  CHECK(recorder.forward_ops == std::vector<std::string>{"exp"});
}

TEST_CASE("print_tape shows input shapes and names as they are when it prints, also for entries that ran") {
  tg::clear_tape();
  Tensor a(Array{{1.f, 2.f}, {3.f, 4.f}}, true);
  a.set_name("a");
  Tensor b = a * 2.f;
  b.set_name("doubled");
  std::string during_backward;
  Tensor c = tg::make_op("spy", b.value(), {b}, [&](const Array& dout) {
    std::ostringstream out;
    tg::print_tape(out);
    during_backward = out.str();
    return std::vector<Array>{dout};
  });
  Tensor loss = tg::sum(c);
  a.set_name("renamed after recording");

  std::ostringstream before;
  tg::print_tape(before);
  CHECK(before.str() ==
        "tape: 3 entries (oldest first)\n"
        "  #0 mul_scalar([2, 2] renamed after recording) -> [2, 2]\n"
        "  #1 spy([2, 2] doubled) -> [2, 2]\n"
        "  #2 sum([2, 2] spy) -> []\n");
  loss.backward();
  // when spy's backward ran, sum's entry had run: its input is shown from the node, still alive in c
  CHECK(during_backward.find("#2 sum([2, 2] spy) -> [] (backward done)") != std::string::npos);
  CHECK(during_backward.find("#1 spy([2, 2] doubled) -> [2, 2]\n") != std::string::npos);
  CHECK(tg::tape_size() == 0);
}

TEST_CASE(
    "detect_anomaly throws the same messages for a NaN forward and a NaN backward, on this thread only") {
  tg::clear_tape();
  Tensor x(Array{1.f, 2.f}, true);
  tg::set_detect_anomaly(true);
  CHECK(tg::detect_anomaly());
  tg::set_detect_anomaly(true);  // twice: still one check per op
  CHECK_THROWS_WITH_AS(tg::make_op("bad_forward", Array{1.f, test_util::kNaN}, {x},
                                   [](const Array& dout) { return std::vector<Array>{dout}; }),
                       "detect_anomaly: the output of 'bad_forward' (tape entry #0) has nan at flat index 1 "
                       "(shape [2])",
                       tg::Error);
  tg::Sequential model(tg::Linear(2, 2));
  model.at<tg::Linear>(0).weight.value()(1, 0) = std::numeric_limits<float>::infinity();
  CHECK_THROWS_WITH_AS(
      model(Tensor(Array{{1.f, 1.f}})),  // Sequential adds the layer in front
      doctest::Contains("detect_anomaly: the output of 'linear' in layer 0.Linear (tape entry #0) "
                        "has inf at flat index 1 (shape [1, 2])"),
      tg::Error);
  Tensor y = tg::make_op("bad_backward", x.value(), {x},
                         [](const Array& dout) { return std::vector<Array>{Array(dout * test_util::kNaN)}; });
  CHECK_THROWS_WITH_AS(
      tg::sum(y).backward(),
      "detect_anomaly: the backward of 'bad_backward' (tape entry #0) gave nan in the gradient of "
      "input 0 at flat index 0",
      tg::Error);
  bool other_thread_on = true;
  std::thread([&] {
    other_thread_on = tg::detect_anomaly();
    CHECK_NOTHROW(tg::make_op("nan_elsewhere", Array{test_util::kNaN}, {Tensor(Array{1.f}, true)},
                              [](const Array& dout) { return std::vector<Array>{dout}; }));
    tg::clear_tape();
  }).join();
  CHECK_FALSE(other_thread_on);
  tg::set_detect_anomaly(false);
  CHECK_FALSE(tg::detect_anomaly());
  tg::clear_tape();
  CHECK_NOTHROW(tg::log(Tensor(Array{-1.f})));  // off again: values are not errors
}

TEST_CASE("a gradient with 0 elements, or a default Array{} for an input that is not 0-d, is no gradient") {
  Tensor x(Array{1.f, 2.f}, true), w(Array{3.f, 4.f}, true);
  Tensor y = tg::make_op("half_grad", x.value() * w.value(), {x, w}, [&](const Array& dout) {
    return std::vector<Array>{Array(dout * w.value()), tg::no_gradient()};
  });
  Tensor z = tg::make_op("api_empty", y.value(), {y, w}, [](const Array& dout) {
    return std::vector<Array>{dout, Array{}};
  });
  tg::sum(z).backward();
  CHECK(x.grad() == Array{3.f, 4.f});
  CHECK(w.grad() == Array{0.f, 0.f});
  CHECK(tg::is_no_gradient(tg::no_gradient(), Array{1.f}));
  CHECK(tg::is_no_gradient(Array{}, Array{1.f}));
  CHECK_FALSE(tg::is_no_gradient(Array{}, Array(2.f)));  // a 0-d input's gradient is 0-d
}

TEST_CASE("the profiler, a tape observer, reports ops and layers while on and nothing once off") {
  tg::manual_seed(5);
  tg::Sequential model(tg::Linear(4, 8), tg::ReLU(), tg::Linear(8, 2));
  tg::reset_profile();
  tg::set_profiling(true);
  CHECK(tg::profiling());
  tg::sum(model(Tensor(xt::ones<float>({3, 4})))).backward();
  tg::set_profiling(false);
  const std::string report = tg::profile_report();
  INFO(report);
  CHECK(report.rfind("op ", 0) == 0);
  CHECK(calls(report, "op", "linear") == 2);
  CHECK(calls(report, "op", "relu") == 1);
  CHECK(calls(report, "op", "sum") == 1);
  CHECK(calls(report, "layer", "0.Linear") == 1);
  CHECK(calls(report, "layer", "1.ReLU") == 1);
  CHECK(calls(report, "layer", "2.Linear") == 1);
  tg::sum(model(Tensor(xt::ones<float>({3, 4})))).backward();
  CHECK(tg::profile_report() == report);
  tg::reset_profile();
  CHECK(tg::profile_report().find("linear") == std::string::npos);
}

TEST_CASE("a tape observer sees the model-file line of the layer of each op, forward and backward") {
  tg::clear_tape();
  tg::Sequential model = tg::model_from_text("linear 3\nrelu\n\nlinear classes\n", {2}, 2, "net.tg");
  Recorder recorder;
  {
    Observing observing(&recorder);
    tg::sum(model(Tensor(Array{{1.f, -1.f}}))).backward();
  }
  CHECK(recorder.forward_layers == std::vector<std::string>{"0.Linear", "1.ReLU", "2.Linear", ""});
  CHECK(recorder.forward_sources ==
        std::vector<std::string>{"net.tg:1 linear 3", "net.tg:2 relu", "net.tg:4 linear classes", ""});
  CHECK(recorder.backward_sources ==
        std::vector<std::string>{"", "net.tg:4 linear classes", "net.tg:2 relu", "net.tg:1 linear 3"});
}
