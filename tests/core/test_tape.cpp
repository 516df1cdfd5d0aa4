// The tape (core/autograd/tape.hpp): order, accumulation, release after backward, per-thread tapes, errors,
// and how print_tape names layers and their model-file lines.
#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include "tapegrad.hpp"
#include "test_util.hpp"

using tg::Array;
using tg::Tensor;

namespace {

// apps/models/lenet.tg, as `tapegrad train --model lenet` builds it.
const std::string kLenetText = test_util::read_text(TAPEGRAD_SOURCE_DIR "/apps/models/lenet.tg");

// A conv, a pool and a linear on [1, 6, 6] inputs, 3 classes, from a file "net.tg".
const std::string kSmallNetText = "# net.tg\nconv2d 2 3\nrelu\nmaxpool2d 2\n\nflatten\nlinear classes\n";

std::string tape_text() {
  std::ostringstream out;
  tg::print_tape(out);
  return out.str();
}

}  // namespace

TEST_CASE("backward of sum(x*x + 1) gives 2x") {
  Tensor x(Array{{1.f, 2.f}, {3.f, 4.f}}, true);
  Tensor y = tg::sum(x * x + 1.f);
  CHECK(y.item() == 34.f);
  y.backward();
  CHECK(x.grad() == Array{{2.f, 4.f}, {6.f, 8.f}});
}

TEST_CASE("a diamond: a tensor reaching the loss on two paths gets the sum of both") {
  Tensor x(Array{1.f, -2.f, 3.f}, true);
  Tensor a = x * 2.f;         // da/dx = 2
  Tensor b = x + 1.f;         // db/dx = 1
  Tensor y = tg::sum(a * b);  // dy/dx = 2b + a = 2(x+1) + 2x = 4x + 2
  y.backward();
  CHECK(x.grad() == Array{6.f, -6.f, 14.f});
}

TEST_CASE("gradients accumulate across backward calls until zero_grad") {
  Tensor x(Array{1.f, 2.f}, true);
  tg::sum(x * 3.f).backward();
  tg::sum(x * 3.f).backward();
  CHECK(x.grad() == Array{6.f, 6.f});
  x.zero_grad();
  CHECK(x.grad() == Array{0.f, 0.f});
  tg::sum(x * x).backward();
  CHECK(x.grad() == Array{2.f, 4.f});
}

TEST_CASE("a chain of 100,000 ops backwards without recursion") {
  Tensor x(Array(tg::Shape{1}, 1.f), true);
  Tensor y = x;
  for (int i = 0; i < 100000; ++i) y = y + 0.f;
  tg::sum(y).backward();
  CHECK(x.grad()(0) == 1.f);
  CHECK(tg::tape_size() == 0);
}

TEST_CASE("entries are released after backward, and intermediate nodes are freed") {
  Tensor x(Array{1.f, 2.f}, true);
  std::weak_ptr<tg::Node> hidden;
  Tensor loss;
  {
    Tensor h = tg::relu(x * 2.f);
    hidden = h.node_ptr();
    loss = tg::sum(h);
  }
  CHECK(tg::tape_size() == 3);
  CHECK_FALSE(hidden.expired());  // the tape holds it until backward
  loss.backward();
  CHECK(tg::tape_size() == 0);
  CHECK(hidden.expired());
  CHECK(x.grad() == Array{2.f, 2.f});
}

TEST_CASE("a second backward through released entries throws a clear tg::Error") {
  Tensor x(Array{1.f, 2.f}, true);
  Tensor loss = tg::sum(x * x);
  loss.backward();
  CHECK_THROWS_WITH_AS(loss.backward(), doctest::Contains("already backwarded"), tg::Error);

  // two losses sharing a released part of the graph
  Tensor h = x * 2.f;
  Tensor l1 = tg::sum(h);
  Tensor l2 = tg::mean(h);
  l1.backward();
  CHECK_THROWS_WITH_AS(l2.backward(), doctest::Contains("a second time"), tg::Error);
  tg::clear_tape();
}

TEST_CASE("backward on a non-scalar, or on a tensor needing no grad, throws tg::Error") {
  Tensor x(Array{1.f, 2.f}, true);
  Tensor y = x * 2.f;
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("expected a scalar"), tg::Error);
  Tensor c(Array(tg::Shape{1}, 1.f));
  CHECK_THROWS_WITH_AS(tg::sum(c).backward(), doctest::Contains("does not require grad"), tg::Error);
  tg::clear_tape();
}

TEST_CASE("a tape that is never backwarded does not grow without bound") {
  Tensor w(Array{1.f, 2.f}, true);
  for (int i = 0; i < 20000; ++i) {
    Tensor unused = tg::sum(w * 2.f);  // dropped at once: its entries are dead
  }
  CHECK(tg::tape_size() < 9000);
  tg::clear_tape();
}

TEST_CASE("a custom op whose backward returns the wrong shape is named in the error") {
  Tensor x(Array{1.f, 2.f}, true);
  Tensor y = tg::make_op("broken", x.value(), {x}, [](const Array&) {
    return std::vector<Array>{Array{1.f, 2.f, 3.f}};
  });
  CHECK_THROWS_WITH_AS(tg::sum(y).backward(), doctest::Contains("backward of 'broken'"), tg::Error);
  tg::clear_tape();
}

TEST_CASE("the tape lists ops with their shapes") {
  Tensor x(Array{{1.f, 2.f}}, true);
  Array w = {1.f, 2.f};
  w.reshape({2, 1});
  Tensor y = tg::relu(tg::matmul(x, Tensor(w)));
  std::ostringstream out;
  tg::print_tape(out);
  CHECK(out.str().find("#0 matmul([1, 2], [2, 1]) -> [1, 1]") != std::string::npos);
  CHECK(out.str().find("#1 relu([1, 1] matmul) -> [1, 1]") != std::string::npos);
  tg::clear_tape();
}

TEST_CASE("backward(grad_output) backpropagates from a non-scalar tensor, as y.backward(g)") {
  Tensor x(Array{1.f, 2.f, 3.f}, true);
  Tensor y = x * x;
  y.backward(Array{1.f, 0.5f, -1.f});
  CHECK(x.grad() == Array{2.f, 2.f, -6.f});
  Tensor z = x * 2.f;
  CHECK_THROWS_WITH_AS(z.backward(Array{1.f, 2.f}), doctest::Contains("grad_output has shape [2]"),
                       tg::Error);
  tg::clear_tape();
}

TEST_CASE("an error in the middle of a backward leaves nothing pending for the next one") {
  Tensor x(Array{1.f, 1.f, 1.f}, true);
  Tensor h = x * 2.f;
  tg::sum(h).backward();  // h's entry is freed
  Tensor u = x * 3.f;
  CHECK_THROWS_AS(tg::sum(u + h).backward(), tg::Error);  // u got its gradient, then h threw
  x.zero_grad();
  tg::sum(x * 5.f).backward();
  CHECK(x.grad() == Array{5.f, 5.f, 5.f});  // u's entry was not replayed
  tg::clear_tape();
}

TEST_CASE("backward of a tensor whose entry is gone says so") {
  Tensor x(Array{1.f, 2.f}, true);
  Tensor y = tg::sum(x * 2.f);
  tg::clear_tape();
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("has no entry on this thread's tape"), tg::Error);
  CHECK(x.grad() == Array{0.f, 0.f});
}

TEST_CASE("the tape is per thread: two threads training two models at once match one after the other") {
  tg::MNIST data(TG_FIXTURE_DIR "/mnist_small", tg::Split::Train);
  data.keep_first(256);
  auto train = [&data](tg::Sequential& model) {
    tg::SGD opt(model.parameters(), {.lr = 0.05f, .momentum = 0.9f});
    tg::DataLoader loader(data, {.batch_size = 32, .shuffle = true, .seed = 3});
    for (const tg::Batch& batch : loader) {
      tg::Tensor loss = tg::cross_entropy(model(batch.images), batch.labels);
      opt.zero_grad();
      loss.backward();
      opt.step();
    }
  };
  auto make = [](std::uint64_t seed) {
    const test_util::ScopedSeed seeded(seed);
    return tg::model_from_text(kLenetText, {1, 28, 28}, 10, "lenet.tg");
  };
  tg::Sequential a1 = make(1), b1 = make(2), a2 = make(1), b2 = make(2);
  train(a1);
  train(b1);
  std::thread ta([&] { train(a2); });
  std::thread tb([&] { train(b2); });
  ta.join();
  tb.join();
  const auto p1 = a1.parameters(), p2 = a2.parameters(), q1 = b1.parameters(), q2 = b2.parameters();
  for (std::size_t i = 0; i < p1.size(); ++i) {
    CHECK(p1[i].value() == p2[i].value());
    CHECK(q1[i].value() == q2[i].value());
  }
  CHECK(p1[0].value() != q1[0].value());
}

TEST_CASE("the tape names the model-file line of the layer that recorded each entry") {
  const test_util::ClearTapeOnExit clear_tape;
  tg::clear_tape();
  tg::Sequential model = tg::model_from_text(kSmallNetText, {1, 6, 6}, 3, "net.tg");
  Tensor images(tg::Array(xt::ones<float>({2, 1, 6, 6})));
  images.set_name("images");
  Tensor logits = model(images);
  const std::string text = tape_text();
  INFO(text);
  // the conv computed the ReLU after it in its pass (training fusion, docs/fusion.md): two entries, the
  // conv's output not stored
  CHECK(text.find(
            "#0 [0.Conv2D net.tg:2 conv2d 2 3] conv2d([2, 1, 6, 6] images, [2, 1, 3, 3] weight, [2] bias) "
            "-> [2, 2, 4, 4] (fused: not stored)\n") != std::string::npos);
  CHECK(text.find("[1.ReLU net.tg:3 relu] relu([2, 2, 4, 4] 0.Conv2D (not stored)) -> [2, 2, 4, 4]\n") !=
        std::string::npos);
  CHECK(text.find("[4.Linear net.tg:7 linear classes] linear([2, 8] 3.Flatten") != std::string::npos);
  // one line per entry
  CHECK(static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) == tg::tape_size() + 1);
  tg::cross_entropy(logits, {0, 2}).backward();
  CHECK(tg::tape_size() == 0);
}

TEST_CASE("a layer not built from a model file is named on the tape as before, without a source") {
  const test_util::ClearTapeOnExit clear_tape;
  tg::clear_tape();
  tg::Sequential model(tg::Linear(2, 3), tg::ReLU());
  Tensor y = model(Tensor(Array{{1.f, 2.f}}));
  const std::string text = tape_text();
  INFO(text);
  CHECK(text.find("#0 [0.Linear] linear([1, 2], [3, 2] weight, [3] bias) -> [1, 3]\n") != std::string::npos);
  CHECK(text.find("#1 [1.ReLU] relu([1, 3] 0.Linear) -> [1, 3]\n") != std::string::npos);
  CHECK(tg::current_layer().empty());
  CHECK(tg::current_layer_source().empty());
}

TEST_CASE("tape entries keep their model-file line after the model that recorded them is gone") {
  const test_util::ClearTapeOnExit clear_tape;
  tg::clear_tape();
  Tensor logits;
  {
    tg::Sequential model = tg::model_from_text(kSmallNetText, {1, 6, 6}, 3, "net.tg");
    logits = model(Tensor(tg::Array(xt::ones<float>({1, 1, 6, 6}))));
  }
  CHECK(tape_text().find("[4.Linear net.tg:7 linear classes] linear(") != std::string::npos);
}

TEST_CASE("a LayerScope without a source keeps the enclosing one's; the source is restored on close") {
  const test_util::ClearTapeOnExit clear_tape;
  tg::clear_tape();
  Tensor x(Array{1.f, 2.f}, true);
  Tensor y;
  {
    tg::LayerScope outer("2.Block", std::make_shared<const std::string>("net.tg:4 block 8"));
    CHECK(tg::current_layer_source() == "net.tg:4 block 8");
    {
      tg::LayerScope inner("0.Linear");  // e.g. a Sequential inside a registered layer
      CHECK(tg::current_layer() == "0.Linear");
      CHECK(tg::current_layer_source() == "net.tg:4 block 8");
      y = x * 2.f;
    }
    CHECK(tg::current_layer() == "2.Block");
    CHECK(tg::current_layer_source() == "net.tg:4 block 8");
  }
  CHECK(tg::current_layer_source().empty());
  const std::string text = tape_text();
  INFO(text);
  CHECK(text.find("#0 [0.Linear net.tg:4 block 8] mul_scalar([2]) -> [2]") != std::string::npos);
}

// Memory during backward: an op output's value and gradient are freed soon after its entry has run, not at
// the end of the backward (resnet20 at batch 128 kept every activation and its gradient to the end: 640 MB
// peak instead of 370 MB). A chain of 100 ops: when the backward reaches the first op, at most a handful
// of the later outputs may still be alive.
TEST_CASE("backward frees each op output soon after its entry ran, and a non-leaf keeps no gradient") {
  const test_util::ClearTapeOnExit clear;
  Tensor x(xt::ones<float>({64}), true);
  std::vector<std::weak_ptr<tg::Node>> outputs;
  Tensor y = x;
  for (int i = 0; i < 100; ++i) {
    y = y * 1.01f;
    outputs.push_back(y.node_ptr());
  }
  const Tensor kept = y;  // a handle the user holds keeps its value, not its gradient
  Tensor loss = tg::sum(y);
  y = Tensor();
  struct AliveAtFirstEntry : tg::TapeObserver {
    const std::vector<std::weak_ptr<tg::Node>>* outputs = nullptr;
    std::size_t alive = 0;
    void backward(const tg::BackwardEvent& e) override {
      if (e.position != 0) return;
      for (const auto& w : *outputs) alive += w.expired() ? 0 : 1;
    }
  } observer;
  observer.outputs = &outputs;
  tg::add_tape_observer(&observer);
  loss.backward();
  tg::remove_tape_observer(&observer);
  CHECK(observer.alive <= 20);  // was 38 when finished nodes were dropped in batches of 64
  CHECK(x.grad().size() == 64);
  CHECK(xt::all(xt::equal(kept.grad(), 0.f)));  // released: reads as zeros, as before any backward
}
