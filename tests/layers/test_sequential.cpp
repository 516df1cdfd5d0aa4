// Sequential (layers/sequential.hpp): summaries, typed access, layer names on outputs and tape entries,
// errors naming the layer; and a small CNN against PyTorch (tests/fixtures/small_cnn.json, written by
// /usr/bin/python3 tests/gen_fixtures_conv.py): names, logits, loss, every gradient, Dropout in train and
// eval.
#include <doctest/doctest.h>

#include <cmath>
#include <sstream>

#include "fixture_runner.hpp"
#include "tapegrad.hpp"
#include "test_util.hpp"

using tg::Array;
using tg::Tensor;
using namespace test_util;

namespace {

// Fails the current test (and stops it) unless small_cnn.json loaded and has every expected key.
const Json& require_cnn() {
  const Json& doc = fixture("small_cnn.json");
  INFO("fixture file: ", fixture_path("small_cnn.json"),
       " (regenerate with /usr/bin/python3 tests/gen_fixtures_conv.py)");
  REQUIRE_MESSAGE(doc.is_object(), "fixture file is missing or is not valid JSON");
  for (const char* key : {"state_dict", "input", "labels", "logits", "loss", "grads", "input_grad"}) {
    REQUIRE_MESSAGE(doc.contains(key), "fixture file has no \"", std::string(key), "\"");
  }
  return doc;
}

// ---- the small CNN -----------------------------------------------------------------------------------

// The model of small_cnn.json (see gen_fixtures_conv.py), in eval mode.
tg::Sequential make_small_cnn() {
  tg::Sequential model(tg::Conv2D(1, 4, 3, {.padding = {1, 1}}), tg::ReLU(), tg::MaxPool2D(2),
                       tg::Conv2D(4, 6, 3), tg::Tanh(), tg::MaxPool2D(2), tg::Flatten(), tg::Linear(24, 16),
                       tg::LeakyReLU(0.01f), tg::Dropout(0.5f), tg::Linear(16, 10));
  model.eval();
  return model;
}

// Overwrites every parameter with the fixture's state_dict tensor of its name; names and order must match.
void load_state_dict(tg::Sequential& model, const Json& state_dict) {
  const auto named = model.named_parameters();
  REQUIRE(named.size() == state_dict.size());
  for (std::size_t i = 0; i < named.size(); ++i) {
    const auto& [name, p] = named[i];
    const Json& entry = state_dict.at(i);
    INFO("parameter ", i, ": tapegrad \"", name, "\", PyTorch \"", entry.at("name").get<std::string>(), "\"");
    REQUIRE(name == entry.at("name").get<std::string>());
    REQUIRE(tg::shape_str(p.shape()) == tg::shape_str(shape_of(entry)));
  }
  for (auto& [name, p] : model.named_parameters()) {
    const auto it = std::find_if(state_dict.begin(), state_dict.end(),
                                 [&name = name](const Json& e) { return e.at("name") == name; });
    REQUIRE(it != state_dict.end());
    p.value() = array_of(*it);
  }
}

}  // namespace

TEST_CASE("summary reports each layer's output shape and the PyTorch parameter totals") {
  tg::clear_tape();  // an earlier test may leave entries; the summary must add none
  tg::Sequential a = cpp_model("lenet");
  const std::string s = a.summary({1, 1, 28, 28});
  INFO(s);
  CHECK(s.find("total parameters: 61,706") != std::string::npos);
  CHECK(s.find("[1, 6, 28, 28]") != std::string::npos);
  CHECK(s.find("[1, 16, 5, 5]") != std::string::npos);
  CHECK(s.find("[1, 400]") != std::string::npos);
  CHECK(s.find("Linear(400 -> 120)") != std::string::npos);
  CHECK(tg::tape_size() == 0);
  tg::Sequential b = cpp_model("convnet");
  CHECK(b.summary({2, 1, 28, 28}).find("total parameters: 1,199,882") != std::string::npos);
  CHECK(b.is_training());  // mode restored
}

namespace {

// A layer that knows its output shape but must not run in a summary: forward() fails the test.
class NoForward : public tg::Module {
 public:
  int* forward_calls;
  Tensor w{Array(xt::zeros<float>({5}))};
  explicit NoForward(int* calls) : forward_calls(calls) { register_parameter("w", w); }
  Tensor forward(const Tensor& x) override {
    ++*forward_calls;
    FAIL_CHECK("summary ran forward()");
    return x;
  }
  tg::Shape output_shape(const tg::Shape& input) const override { return {input[0] * 2}; }
};

// The row of `table` whose first field is `index` ("" if none).
std::string row(const std::string& table, const std::string& index) {
  std::istringstream lines(table);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(index + " ", 0) == 0) return line;
  }
  return "";
}

}  // namespace

TEST_CASE("summary takes shapes from output_shape: no layer's forward runs, nothing is recorded") {
  tg::clear_tape();
  int forward_calls = 0;
  tg::Sequential model(tg::Linear(3, 4), tg::ReLU());
  model.add(NoForward(&forward_calls));
  model.add(tg::Linear(8, 2));
  const std::string s = model.summary({7, 3});
  INFO(s);
  CHECK(forward_calls == 0);
  CHECK(tg::tape_size() == 0);
  CHECK(row(s, "0").find("Linear(3 -> 4)") != std::string::npos);
  CHECK(row(s, "0").find("[7, 4]") != std::string::npos);
  CHECK(row(s, "2").find("NoForward") != std::string::npos);
  CHECK(row(s, "2").find("[7, 8]") != std::string::npos);
  CHECK(row(s, "2").find(" 5") != std::string::npos);  // its parameters
  CHECK(row(s, "3").find("[7, 2]") != std::string::npos);
  CHECK(s.find("total parameters: 39") != std::string::npos);  // 16 + 5 + 18
  CHECK(s.find("source") == std::string::npos);                // no layer from a model file: no column
  CHECK(model.is_training());                                  // the mode is not touched
  model.eval();
  (void)model.summary({1, 3});
  CHECK_FALSE(model.is_training());
  CHECK_THROWS_WITH_AS((void)model.summary({3}), doctest::Contains("needs a batch axis"), tg::Error);
  CHECK_THROWS_WITH_AS((void)model.summary({1, 5}), doctest::Contains("layer 0 Linear(3 -> 4): "), tg::Error);
  CHECK(forward_calls == 0);
}

TEST_CASE("summary has a column with the model-file location of layers built from a model file") {
  tg::clear_tape();
  tg::Sequential model =
      tg::model_from_text("# net.tg\nconv2d 2 3\nrelu\n\nflatten\nlinear classes\n", {1, 6, 6}, 3, "net.tg");
  model.add(tg::Softmax());  // not from the file: a blank cell
  const std::string s = model.summary({4, 1, 6, 6});
  INFO(s);
  CHECK(s.rfind("#", 0) == 0);
  CHECK(s.substr(0, s.find('\n')).ends_with("parameters  source"));
  CHECK(row(s, "0").ends_with("  net.tg:2"));
  CHECK(row(s, "0").find("[4, 2, 4, 4]") != std::string::npos);
  CHECK(row(s, "1").ends_with("  net.tg:3"));
  CHECK(row(s, "2").ends_with("  net.tg:5"));
  CHECK(row(s, "3").ends_with("  net.tg:6"));
  CHECK(row(s, "3").find("[4, 3]") != std::string::npos);
  CHECK(row(s, "4").find("Softmax") != std::string::npos);
  CHECK(row(s, "4").find("net.tg") == std::string::npos);
  CHECK(row(s, "4").ends_with("0"));                            // no trailing blank cell
  CHECK(s.find("total parameters: 119") != std::string::npos);  // 2*9+2 + 3*32+3
  CHECK(tg::tape_size() == 0);
}

TEST_CASE("Sequential gives typed access, indexing and size") {
  tg::Sequential model = cpp_model("lenet");
  CHECK(model.size() == 12);
  tg::Conv2D& conv = model.at<tg::Conv2D>(0);
  CHECK(conv.weight.shape() == tg::Shape{6, 1, 5, 5});
  CHECK(model[7].describe() == "Linear(400 -> 120)");
  CHECK_THROWS_WITH_AS(model.at<tg::Linear>(0), doctest::Contains("layer 0 is Conv2D"), tg::Error);
  CHECK_THROWS_WITH_AS(model[12], doctest::Contains("out of range"), tg::Error);
  tg::Sequential built;
  built.add(tg::Linear(4, 3));
  built.add(tg::Tanh());
  CHECK(built(Tensor(xt::zeros<float>({2, 4}))).shape() == tg::Shape{2, 3});
}

TEST_CASE("layer outputs and tape entries carry the layer's name") {
  tg::Sequential model(tg::Linear(4, 3), tg::ReLU());
  Tensor y = model(Tensor(xt::ones<float>({2, 4})));
  CHECK(y.name() == "1.ReLU");
  std::ostringstream tape;
  tg::print_tape(tape);
  CHECK(tape.str().find("[0.Linear] linear(") != std::string::npos);
  CHECK(tape.str().find("[1.ReLU] relu(") != std::string::npos);
  tg::clear_tape();
}

TEST_CASE("PyTorch small CNN: Sequential names, logits, cross-entropy loss and all gradients match") {
  const Json& doc = require_cnn();
  tg::Sequential model = make_small_cnn();

  // named_parameters() keys are PyTorch's state_dict keys, in the same order.
  std::vector<std::string> want_names;
  for (const Json& entry : doc.at("state_dict")) want_names.push_back(entry.at("name").get<std::string>());
  std::vector<std::string> got_names;
  for (const auto& [name, p] : model.named_parameters()) got_names.push_back(name);
  CHECK(got_names == want_names);
  REQUIRE(got_names.size() == want_names.size());

  load_state_dict(model, doc.at("state_dict"));
  tg::Tensor x(array_of(doc.at("input")), /*requires_grad=*/true);
  const std::vector<int> labels = doc.at("labels").get<std::vector<int>>();

  const tg::Tensor logits = model(x);
  check_close(logits.value(), doc.at("logits"), "logits");
  const tg::Tensor loss = tg::cross_entropy(logits, labels);
  const float want_loss = doc.at("loss").get<float>();
  CHECK_MESSAGE(close(loss.item(), want_loss), "loss: tapegrad ", loss.item(), ", PyTorch ", want_loss);

  loss.backward();
  int grads_checked = 0;
  for (const auto& [name, p] : model.named_parameters()) {
    INFO("parameter ", name);
    REQUIRE_MESSAGE(doc.at("grads").contains(name), "fixture has no gradient for ", name);
    check_close(p.grad(), doc.at("grads").at(name), "grad of " + name);
    ++grads_checked;
  }
  CHECK(grads_checked == static_cast<int>(want_names.size()));
  CHECK(grads_checked >= 1);
  check_close(x.grad(), doc.at("input_grad"), "grad of the input");
}

TEST_CASE("PyTorch small CNN: Dropout zeroes activations in train mode and is the identity in eval mode") {
  const Json& doc = require_cnn();
  tg::Sequential model = make_small_cnn();
  load_state_dict(model, doc.at("state_dict"));
  const tg::Tensor x(array_of(doc.at("input")));
  tg::NoGradGuard no_grad;

  // The activations that reach Dropout (layer 9): run layers 0..8 one by one.
  tg::Tensor h = x;
  h = model.at<tg::Conv2D>(0)(h);
  h = model.at<tg::ReLU>(1)(h);
  h = model.at<tg::MaxPool2D>(2)(h);
  h = model.at<tg::Conv2D>(3)(h);
  h = model.at<tg::Tanh>(4)(h);
  h = model.at<tg::MaxPool2D>(5)(h);
  h = model.at<tg::Flatten>(6)(h);
  h = model.at<tg::Linear>(7)(h);
  h = model.at<tg::LeakyReLU>(8)(h);
  tg::Dropout& dropout = model.at<tg::Dropout>(9);
  const tg::Array& before = h.value();
  REQUIRE(before.size() == 3 * 16);

  // Eval: identity, and the whole model reproduces the PyTorch logits.
  CHECK(dropout(h).value() == before);
  const tg::Array eval_logits = model(x).value();
  check_close(eval_logits, doc.at("logits"), "eval-mode logits");

  // Train: with p = 0.5 over 48 activations, some are zeroed and the others scaled by 1 / (1 - p) = 2.
  model.train();
  const ScopedSeed seed(7);
  const tg::Array after = dropout(h).value();
  REQUIRE(after.shape() == before.shape());
  int zeroed = 0;
  int kept = 0;
  for (std::size_t i = 0; i < before.size(); ++i) {
    const float b = before.flat(i);
    const float a = after.flat(i);
    INFO("activation ", i, ": before ", b, ", after ", a);
    if (a == 0.f && b != 0.f) {
      ++zeroed;
    } else {
      CHECK(a == doctest::Approx(2.f * b));
      ++kept;
    }
  }
  CHECK(zeroed >= 1);
  CHECK(kept >= 1);

  // And the train-mode model's logits differ from eval mode's.
  const tg::Array train_logits = model(x).value();
  REQUIRE(train_logits.shape() == eval_logits.shape());
  float max_diff = 0.f;
  for (std::size_t i = 0; i < eval_logits.size(); ++i) {
    max_diff = std::max(max_diff, std::fabs(train_logits.flat(i) - eval_logits.flat(i)));
  }
  CHECK_MESSAGE(max_diff > 1e-4f, "train-mode logits equal eval-mode logits: Dropout did nothing");

  // Back to eval: PyTorch's numbers again.
  model.eval();
  check_close(model(x).value(), doc.at("logits"), "logits after train() then eval()");
}
