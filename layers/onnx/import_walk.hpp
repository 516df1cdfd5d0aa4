// The graph walk of ONNX import (import.cpp), for the entry points in import_model.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "layers/onnx/import_graph.hpp"
#include "layers/sequential.hpp"

namespace tg::onnx_detail {

// Maps the nodes from the graph's input (per-example shape `input`) to its output onto layers appended to
// `seq`, and returns the output's per-example shape; what a user should know goes into `notes`. tg::Error
// naming `file` and the node for anything it cannot map.
Shape walk_graph(const Graph& g, const std::string& file, std::int64_t opset, const Shape& input,
                 Sequential& seq, std::vector<std::string>& notes);

}  // namespace tg::onnx_detail
