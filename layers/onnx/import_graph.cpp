#include "layers/onnx/import_graph.hpp"

#include <algorithm>

#include "core/base/error.hpp"
#include "layers/onnx/onnx_proto.hpp"

namespace tg::onnx_detail {

Graph::Graph(const onnx::GraphProto& g, const std::string& file) : g_(g), file_(file) {
  for (const onnx::TensorProto& t : g.initializer()) {
    check_tensor_data(t, file + ": initializer");
    constants_[t.name()] = &t;
  }
  for (int i = 0; i < g.node_size(); ++i) {
    const onnx::NodeProto& n = g.node(i);
    if (n.op_type() == "Constant" && n.domain().empty()) {
      const auto value = std::find_if(n.attribute().begin(), n.attribute().end(),
                                      [](const onnx::AttributeProto& a) { return a.name() == "value"; });
      if (value == n.attribute().end() || !value->has_t() || n.output_size() != 1)
        fail(file, ": ", describe(static_cast<std::size_t>(i)),
             ": only a Constant with a tensor 'value' is supported");
      check_tensor_data(value->t(), file + ": " + describe(static_cast<std::size_t>(i)));
      constants_[n.output(0)] = &value->t();
    }
  }
  std::vector<std::string> inputs;
  for (const onnx::ValueInfoProto& v : g.input())
    if (!constants_.count(v.name())) inputs.push_back(v.name());
  if (inputs.size() != 1) {
    std::string names;
    for (const std::string& n : inputs) names += (names.empty() ? "'" : ", '") + n + "'";
    fail(file, ": the graph has ", inputs.size(), " inputs", inputs.empty() ? "" : " (" + names + ")",
         "; tapegrad imports models with exactly one input, the image batch");
  }
  input_ = inputs[0];
  if (g.output_size() != 1)
    fail(file, ": the graph has ", g.output_size(),
         " outputs; tapegrad imports models with exactly one (logits)");
  output_ = g.output(0).name();
  const onnx::ValueInfoProto& in = *std::find_if(
      g.input().begin(), g.input().end(), [&](const onnx::ValueInfoProto& v) { return v.name() == input_; });
  if (!in.type().has_tensor_type() || in.type().tensor_type().elem_type() != onnx::TensorProto::FLOAT)
    fail(file, ": the input '", input_, "' is not a float32 tensor");
  if (in.type().tensor_type().has_shape()) {
    for (const onnx::TensorShapeProto::Dimension& d : in.type().tensor_type().shape().dim())
      input_dims_.push_back(d.has_dim_value() && d.dim_value() > 0 ? d.dim_value() : -1);
  }

  // Who writes and reads what; every name read must come from somewhere.
  const std::size_t count = static_cast<std::size_t>(g.node_size());
  if (count > kMaxGraphNodes)
    fail(file, ": the graph has ", count, " nodes; tapegrad imports graphs of at most ", kMaxGraphNodes);
  for (std::size_t i = 0; i < count; ++i) {
    for (const std::string& out : node(i).output()) {
      if (out.empty()) continue;
      if (producer_.count(out) || out == input_ || (constants_.count(out) && node(i).op_type() != "Constant"))
        fail(file, ": ", describe(i), " writes '", out, "', which another node or the graph already defines");
      if (node(i).op_type() != "Constant") producer_[out] = i;
    }
  }
  for (std::size_t i = 0; i < count; ++i) {
    if (node(i).op_type() == "Constant") continue;
    for (const std::string& in_name : node(i).input()) {
      if (in_name.empty()) continue;  // an optional input left out
      if (in_name != input_ && !constants_.count(in_name) && !producer_.count(in_name))
        fail(file, ": ", describe(i), " reads '", in_name,
             "', which no node, initializer or graph input defines");
      auto& list = consumers_[in_name];
      if (list.empty() || list.back() != i) list.push_back(i);
    }
  }
  if (output_ != input_ && !producer_.count(output_))
    fail(file, ": the graph output '", output_, "' is written by no node");

  // Topological order (Kahn); what is left over lies on a cycle.
  std::vector<std::size_t> waiting(count, 0);
  for (std::size_t i = 0; i < count; ++i)
    for (const std::string& in_name : node(i).input())
      if (producer_.count(in_name)) ++waiting[i];
  std::vector<std::size_t> ready;
  for (std::size_t i = 0; i < count; ++i)
    if (waiting[i] == 0) ready.push_back(i);
  while (!ready.empty()) {
    const std::size_t i = ready.back();
    ready.pop_back();
    order_.push_back(i);
    for (const std::string& out : node(i).output()) {
      const auto it = consumers_.find(out);
      if (it == consumers_.end() || !producer_.count(out)) continue;  // a Constant's value waits for no one
      for (const std::size_t c : it->second) {
        for (const std::string& in_name : node(c).input())
          if (in_name == out && --waiting[c] == 0) ready.push_back(c);
      }
    }
  }
  if (order_.size() != count) {
    for (std::size_t i = 0; i < count; ++i)
      if (waiting[i] > 0) fail(file, ": the graph has a cycle through ", describe(i));
  }
  ancestors_.assign(count, std::vector<bool>(count, false));
  for (const std::size_t i : order_) {
    for (const std::string& in_name : node(i).input()) {
      const auto p = producer_.find(in_name);
      if (p == producer_.end()) continue;
      std::vector<bool>& mine = ancestors_[i];
      const std::vector<bool>& theirs = ancestors_[p->second];
      mine[p->second] = true;
      for (std::size_t k = 0; k < count; ++k)
        if (theirs[k]) mine[k] = true;
    }
  }
}

std::string Graph::describe(std::size_t i) const {
  const onnx::NodeProto& n = node(i);
  const std::string name = !n.name().empty()     ? n.name()
                           : n.output_size() > 0 ? n.output(0)
                                                 : "#" + std::to_string(i);
  return "node '" + name + "' (" + n.op_type() + ")";
}

std::optional<std::size_t> Graph::producer(const std::string& tensor) const {
  const auto it = producer_.find(tensor);
  if (it == producer_.end()) return std::nullopt;
  return it->second;
}

const std::vector<std::size_t>& Graph::consumers(const std::string& tensor) const {
  static const std::vector<std::size_t> none;
  const auto it = consumers_.find(tensor);
  return it == consumers_.end() ? none : it->second;
}

bool Graph::reaches(std::size_t n, const std::string& tensor) const {
  const auto p = producer(tensor);
  return p && (*p == n || ancestors_[*p][n]);
}

const onnx::TensorProto* Graph::constant(const std::string& tensor) const {
  const auto it = constants_.find(tensor);
  return it == constants_.end() ? nullptr : it->second;
}

Array Graph::float_constant(std::size_t n, const std::string& tensor) const {
  const onnx::TensorProto* t = constant(tensor);
  if (!t) fail(file_, ": ", describe(n), ": its input '", tensor, "' must be a constant (an initializer)");
  return to_array(*t, file_ + ": " + describe(n));
}

std::vector<std::int64_t> Graph::int_constant(std::size_t n, const std::string& tensor) const {
  const onnx::TensorProto* t = constant(tensor);
  if (!t) fail(file_, ": ", describe(n), ": its input '", tensor, "' must be a constant (an initializer)");
  return to_int64s(*t, file_ + ": " + describe(n));
}

namespace {

const onnx::AttributeProto* find_attribute(const onnx::NodeProto& n, const std::string& name) {
  for (const onnx::AttributeProto& a : n.attribute())
    if (a.name() == name) return &a;
  return nullptr;
}

[[noreturn]] void bad_attribute(const onnx::NodeProto& n, const std::string& name, const char* expected) {
  fail("node '", n.name(), "' (", n.op_type(), "): attribute '", name, "' should be ", expected);
}

}  // namespace

std::int64_t int_attribute(const onnx::NodeProto& n, const std::string& name, std::int64_t fallback) {
  const onnx::AttributeProto* a = find_attribute(n, name);
  if (!a) return fallback;
  if (a->type() != onnx::AttributeProto::INT) bad_attribute(n, name, "an integer");
  return a->i();
}

float float_attribute(const onnx::NodeProto& n, const std::string& name, float fallback) {
  const onnx::AttributeProto* a = find_attribute(n, name);
  if (!a) return fallback;
  if (a->type() != onnx::AttributeProto::FLOAT) bad_attribute(n, name, "a float");
  return a->f();
}

std::string string_attribute(const onnx::NodeProto& n, const std::string& name, const std::string& fallback) {
  const onnx::AttributeProto* a = find_attribute(n, name);
  if (!a) return fallback;
  if (a->type() != onnx::AttributeProto::STRING) bad_attribute(n, name, "a string");
  return a->s();
}

std::vector<std::int64_t> ints_attribute(const onnx::NodeProto& n, const std::string& name) {
  const onnx::AttributeProto* a = find_attribute(n, name);
  if (!a) return {};
  if (a->type() != onnx::AttributeProto::INTS) bad_attribute(n, name, "a list of integers");
  return {a->ints().begin(), a->ints().end()};
}

}  // namespace tg::onnx_detail
