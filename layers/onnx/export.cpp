// ONNX export (layers/onnx/onnx.hpp): being written.
#include "layers/onnx/onnx.hpp"
#include "layers/onnx/onnx_proto.hpp"
