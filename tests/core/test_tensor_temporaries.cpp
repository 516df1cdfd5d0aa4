// value(), grad(), shape() and name() of a temporary Tensor return copies, never references into a node that
// dies at the end of the statement (the API contract: "values of temporaries").
#include <doctest/doctest.h>

#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "tapegrad.hpp"

using tg::Array;
using tg::Tensor;

namespace {

// On a temporary (rvalue, const or not): a value. On a named Tensor: a reference.
static_assert(std::is_same_v<decltype(std::declval<Tensor>().value()), Array>);
static_assert(std::is_same_v<decltype(std::declval<const Tensor>().value()), Array>);
static_assert(std::is_same_v<decltype(std::declval<Tensor&>().value()), Array&>);
static_assert(std::is_same_v<decltype(std::declval<const Tensor&>().value()), const Array&>);
static_assert(std::is_same_v<decltype(std::declval<Tensor>().grad()), Array>);
static_assert(std::is_same_v<decltype(std::declval<const Tensor>().grad()), Array>);
static_assert(std::is_same_v<decltype(std::declval<Tensor&>().grad()), const Array&>);
static_assert(std::is_same_v<decltype(std::declval<Tensor>().shape()), tg::Shape>);
static_assert(std::is_same_v<decltype(std::declval<const Tensor&>().shape()), const tg::Shape&>);
static_assert(std::is_same_v<decltype(std::declval<Tensor>().name()), std::string>);
static_assert(std::is_same_v<decltype(std::declval<const Tensor&>().name()), const std::string&>);
static_assert(std::is_same_v<decltype(std::declval<Tensor>().set_name("x")), Tensor>);
static_assert(std::is_same_v<decltype(std::declval<Tensor&>().set_name("x")), Tensor&>);

// A deterministic data set: `n` points of 4 features, labels from a fixed rule the model knows nothing of.
struct Synthetic {
  Array x;                  // [n, 4]
  std::vector<int> labels;  // [n]
};

Synthetic synthetic(std::size_t n) {
  Synthetic d{Array::from_shape({n, 4}), {}};
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < 4; ++j) d.x(i, j) = static_cast<float>(((i * 7 + j * 13) % 17)) / 8.f - 1.f;
    d.labels.push_back(static_cast<int>((i * 5) % 3));
  }
  return d;
}

Array rows(const Array& x, std::size_t first, std::size_t count) {
  Array out = Array::from_shape({count, x.shape()[1]});
  for (std::size_t i = 0; i < count; ++i) {
    for (std::size_t j = 0; j < x.shape()[1]; ++j) out(i, j) = x(first + i, j);
  }
  return out;
}

void append_argmax(const Array& logits, std::vector<int>& predictions) {
  for (std::size_t i = 0; i < logits.shape()[0]; ++i) {
    std::size_t best = 0;
    for (std::size_t c = 1; c < logits.shape()[1]; ++c) best = logits(i, c) > logits(i, best) ? c : best;
    predictions.push_back(static_cast<int>(best));
  }
}

// The evaluation loop as a new user writes it: the logits of a temporary, bound to a const reference.
std::vector<int> predict_from_temporary(tg::Sequential& net, const Synthetic& data, std::size_t batch) {
  std::vector<int> predictions;
  for (std::size_t first = 0; first < data.labels.size(); first += batch) {
    const Tensor x(rows(data.x, first, batch));
    const tg::Array& z = net(x).value();
    append_argmax(z, predictions);
  }
  return predictions;
}

std::vector<int> predict_from_named(tg::Sequential& net, const Synthetic& data, std::size_t batch) {
  std::vector<int> predictions;
  for (std::size_t first = 0; first < data.labels.size(); first += batch) {
    const Tensor x(rows(data.x, first, batch));
    const Tensor logits = net(x);
    append_argmax(logits.value(), predictions);
  }
  return predictions;
}

double accuracy(const std::vector<int>& predictions, const std::vector<int>& labels) {
  std::size_t right = 0;
  for (std::size_t i = 0; i < labels.size(); ++i) right += predictions[i] == labels[i];
  return static_cast<double>(right) / static_cast<double>(labels.size());
}

}  // namespace

TEST_CASE(
    "value(), grad(), shape() and name() return copies on a temporary Tensor, references on a named one") {
  // (the static_asserts above are the check; these say the same at run time, for the report)
  CHECK(std::is_same_v<decltype(std::declval<Tensor>().value()), Array>);
  CHECK(std::is_same_v<decltype(std::declval<const Tensor&>().value()), const Array&>);
  CHECK(std::is_same_v<decltype(std::declval<Tensor>().grad()), Array>);
  CHECK(std::is_same_v<decltype(std::declval<Tensor>().shape()), tg::Shape>);
}

TEST_CASE("an evaluation loop with `const tg::Array& z = net(x).value();` predicts as with a named Tensor") {
  tg::manual_seed(11);
  tg::Sequential net(tg::Linear(4, 16), tg::ReLU(), tg::Linear(16, 3));
  const Synthetic data = synthetic(100);
  for (const std::size_t batch : {std::size_t{1}, std::size_t{50}}) {
    CAPTURE(batch);
    // grad mode on, as a new user leaves it: the temporary's node is on the tape only weakly
    const std::vector<int> named = predict_from_named(net, data, batch);
    const std::vector<int> temporary = predict_from_temporary(net, data, batch);
    REQUIRE(named.size() == data.labels.size());
    REQUIRE(temporary == named);
    CHECK(accuracy(temporary, data.labels) == accuracy(named, data.labels));
  }
  tg::clear_tape();
}

TEST_CASE("grad() of a temporary Tensor is a copy that outlives the statement and later zero_grad()") {
  Tensor x(Array{1.f, -2.f, 3.f}, true);
  tg::sum(x * x).backward();
  const Array& g = Tensor(x).grad();  // a temporary handle to x's node
  x.zero_grad();                      // changes the node's gradient, not the copy
  CHECK(g == Array{2.f, -4.f, 6.f});
  CHECK(x.grad() == Array{0.f, 0.f, 0.f});

  const Array& fresh = Tensor(Array{{1.f, 2.f}}, true).grad();  // node dies here; zeros of its shape
  CHECK(fresh == Array{{0.f, 0.f}});
  const tg::Shape& shape = (x * 2.f).shape();
  CHECK(shape == tg::Shape{3});
  tg::clear_tape();
}
