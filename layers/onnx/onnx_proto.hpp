// What export.cpp and import.cpp share, on ONNX's protobuf types (internal to tapegrad_onnx: the public
// header, onnx.hpp, names no protobuf type). Every failure is a tg::Error naming the file or node.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <string>

#include "core/autograd/tensor.hpp"

namespace tg::onnx_detail {

// The metadata_props keys (docs/onnx.md): what a graph does not say about its model.
inline constexpr const char* kMetaMean = "tapegrad.mean";
inline constexpr const char* kMetaStd = "tapegrad.std";
inline constexpr const char* kMetaClasses = "tapegrad.classes";
inline constexpr const char* kMetaModel = "tapegrad.model";
inline constexpr const char* kMetaSource = "tapegrad.source";
inline constexpr const char* kMetaInput = "tapegrad.input";

// Files above this are refused before parsing (a corrupt or hostile length), as the other readers do.
inline constexpr std::size_t kMaxModelBytes = std::size_t{1} << 30;

// onnx::checker::check_model, then strict shape inference (every node's output type and shape inferred,
// errors thrown): what `export` asserts of its own output. tg::Error with the checker's message, prefixed by
// `what` ("export of net.tg").
void check_strictly(const onnx::ModelProto& model, const std::string& what);

// Parses `bytes` as a ModelProto; tg::Error naming `name` for an empty, truncated or foreign message.
onnx::ModelProto parse_model(const std::string& bytes, const std::string& name);

// A float tensor (raw_data or float_data) as an Array; tg::Error naming `what` for another element type,
// external data, a negative or overflowing dimension, or data whose size disagrees with the dimensions.
Array to_array(const onnx::TensorProto& t, const std::string& what);
// The int64 values of an INT64 tensor (Clip bounds, Pad's pads, Reshape's shape).
std::vector<std::int64_t> to_int64s(const onnx::TensorProto& t, const std::string& what);

// Fills `t` with `a`'s shape and float32 values (raw_data, little-endian), named `name`.
void set_tensor(onnx::TensorProto& t, const std::string& name, const Array& a);

// For a FLOAT or INT64 initializer: its dimensions are sane and its data holds exactly as many values as they
// declare (nothing is allocated); tg::Error naming `what` and the tensor otherwise. Other types pass.
void check_tensor_data(const onnx::TensorProto& t, const std::string& what);

}  // namespace tg::onnx_detail
