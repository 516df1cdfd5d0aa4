// The graph side of ONNX import (import_graph.cpp): which tensor each node reads and writes, the checks
// that make a graph a graph (one input, one output, no dangling name, no cycle), constants, and the fork
// and join of residual blocks. import.cpp maps the nodes onto layers.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/autograd/tensor.hpp"

namespace tg::onnx_detail {

// More nodes than this are refused (10 times the layers a model file may have): the graph's checks keep a
// bit per pair of nodes.
inline constexpr std::size_t kMaxGraphNodes = 10000;

class Graph {
 public:
  // Indexes `g` and checks it; tg::Error naming `file` and the node for a dangling input, a cycle, a second
  // input or output, a non-float input.
  Graph(const onnx::GraphProto& g, const std::string& file);

  const onnx::GraphProto& proto() const { return g_; }
  const std::string& input() const { return input_; }    // the one graph input that is not an initializer
  const std::string& output() const { return output_; }  // the one graph output
  // The input's dims as written: a number, or -1 for a symbolic or missing one.
  const std::vector<std::int64_t>& input_dims() const { return input_dims_; }

  const onnx::NodeProto& node(std::size_t i) const { return g_.node(static_cast<int>(i)); }
  // "node 'name' (op_type)" for messages; a node without a name is named by its first output.
  std::string describe(std::size_t i) const;
  // The node that writes `tensor`; nullopt for the input, an initializer or a Constant's value.
  std::optional<std::size_t> producer(const std::string& tensor) const;
  // The nodes reading `tensor`, in graph order (Constant nodes never count).
  const std::vector<std::size_t>& consumers(const std::string& tensor) const;
  // Whether `node` lies on a path that reaches `tensor` (its producer included).
  bool reaches(std::size_t node, const std::string& tensor) const;

  // A constant input: an initializer or a Constant node's value (nullptr otherwise).
  const onnx::TensorProto* constant(const std::string& tensor) const;
  // The constant `tensor` as floats / int64s; tg::Error naming `node` when it is not a constant.
  Array float_constant(std::size_t node, const std::string& tensor) const;
  std::vector<std::int64_t> int_constant(std::size_t node, const std::string& tensor) const;

 private:
  const onnx::GraphProto& g_;
  std::string file_, input_, output_;
  std::vector<std::int64_t> input_dims_;
  std::map<std::string, const onnx::TensorProto*> constants_;
  std::map<std::string, std::size_t> producer_;
  std::map<std::string, std::vector<std::size_t>> consumers_;
  std::vector<std::vector<bool>> ancestors_;  // [node][other]: node depends on other's outputs
  std::vector<std::size_t> order_;            // topological
};

// Attributes of a node, read with their types checked (tg::Error naming the node otherwise).
std::int64_t int_attribute(const onnx::NodeProto& n, const std::string& name, std::int64_t fallback);
float float_attribute(const onnx::NodeProto& n, const std::string& name, float fallback);
std::string string_attribute(const onnx::NodeProto& n, const std::string& name, const std::string& fallback);
std::vector<std::int64_t> ints_attribute(const onnx::NodeProto& n, const std::string& name);

}  // namespace tg::onnx_detail
