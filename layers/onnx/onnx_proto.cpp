#include "layers/onnx/onnx_proto.hpp"

#include <onnx/checker.h>
#include <onnx/shape_inference/implementation.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "core/base/error.hpp"

namespace tg::onnx_detail {

void check_strictly(const onnx::ModelProto& model, const std::string& what) {
  try {
    onnx::checker::check_model(model);
    onnx::ModelProto inferred = model;
    onnx::shape_inference::InferShapes(inferred, onnx::OpSchemaRegistry::Instance(),
                                       onnx::ShapeInferenceOptions(/*check_type=*/true, /*strict=*/1));
  } catch (const std::exception& e) {
    fail(what, ": the ONNX checker refuses the model: ", e.what());
  }
}

onnx::ModelProto parse_model(const std::string& bytes, const std::string& name) {
  if (bytes.empty()) fail(name, ": empty file (expected an ONNX model, a serialized onnx.ModelProto)");
  if (bytes.size() > kMaxModelBytes)
    fail(name, ": ", bytes.size(), " bytes, more than the ", kMaxModelBytes, " an ONNX model may have here");
  onnx::ModelProto model;
  if (!model.ParseFromString(bytes))
    fail(name,
         ": not an ONNX model (the bytes do not parse as an onnx.ModelProto; truncated or another file?)");
  if (!model.has_graph() || model.ir_version() <= 0)
    fail(name, ": not an ONNX model (a protobuf message without ",
         model.has_graph() ? "an IR version" : "a graph", "; another kind of protobuf file?)");
  return model;
}

namespace {

// The element count of `t`'s dimensions; tg::Error for a negative dimension or an overflowing product. The
// product of the nonzero dimensions is bounded too: a tensor with a 0 among huge dimensions has no elements,
// but its strides (the products of the dimensions after each) would overflow a signed 64-bit integer in
// xtensor (fuzzer finding, under UBSan).
std::size_t element_count(const onnx::TensorProto& t, const std::string& what) {
  constexpr std::size_t kLimit = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max()) / 16;
  std::size_t n = 1, span = 1;
  for (const std::int64_t d : t.dims()) {
    if (d < 0) fail(what, ": tensor '", t.name(), "' has a negative dimension (", d, ")");
    const auto u = static_cast<std::size_t>(d);
    const std::size_t f = std::max<std::size_t>(u, 1);
    if (span > kLimit / f) fail(what, ": tensor '", t.name(), "' declares more elements than fit in memory");
    span *= f;
    n *= u;
  }
  return n;
}

}  // namespace

Array to_array(const onnx::TensorProto& t, const std::string& what) {
  if (t.data_location() == onnx::TensorProto::EXTERNAL || t.external_data_size() > 0)
    fail(what, ": tensor '", t.name(), "' keeps its data in an external file, which is not supported");
  if (t.data_type() != onnx::TensorProto::FLOAT)
    fail(what, ": tensor '", t.name(), "' has element type ",
         onnx::TensorProto::DataType_Name(static_cast<onnx::TensorProto::DataType>(t.data_type())),
         " (expected FLOAT)");
  const std::size_t n = element_count(t, what);
  Shape shape(t.dims().begin(), t.dims().end());
  if (t.has_raw_data()) {
    if (t.raw_data().size() != n * sizeof(float))
      fail(what, ": tensor '", t.name(), "' of shape ", shape_str(shape), " holds ", t.raw_data().size(),
           " bytes of data (expected ", n * sizeof(float), ")");
  } else if (static_cast<std::size_t>(t.float_data_size()) != n) {
    fail(what, ": tensor '", t.name(), "' of shape ", shape_str(shape), " holds ", t.float_data_size(),
         " values (expected ", n, ")");
  }
  Array a = Array::from_shape(shape);
  if (t.has_raw_data()) {
    std::memcpy(a.data(), t.raw_data().data(), n * sizeof(float));  // little-endian, as x86 and ONNX are
  } else {
    std::copy(t.float_data().begin(), t.float_data().end(), a.data());
  }
  return a;
}

std::vector<std::int64_t> to_int64s(const onnx::TensorProto& t, const std::string& what) {
  if (t.data_type() != onnx::TensorProto::INT64)
    fail(what, ": tensor '", t.name(), "' should hold INT64 values");
  const std::size_t n = element_count(t, what);
  std::vector<std::int64_t> out(n);
  if (t.has_raw_data()) {
    if (t.raw_data().size() != n * sizeof(std::int64_t))
      fail(what, ": tensor '", t.name(), "' holds ", t.raw_data().size(), " bytes (expected ", n * 8, ")");
    std::memcpy(out.data(), t.raw_data().data(), n * sizeof(std::int64_t));
  } else {
    if (static_cast<std::size_t>(t.int64_data_size()) != n)
      fail(what, ": tensor '", t.name(), "' holds ", t.int64_data_size(), " values (expected ", n, ")");
    std::copy(t.int64_data().begin(), t.int64_data().end(), out.begin());
  }
  return out;
}

void set_tensor(onnx::TensorProto& t, const std::string& name, const Array& a) {
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::FLOAT);
  t.clear_dims();
  for (const std::size_t d : a.shape()) t.add_dims(static_cast<std::int64_t>(d));
  t.set_raw_data(std::string(reinterpret_cast<const char*>(a.data()), a.size() * sizeof(float)));
}

void check_tensor_data(const onnx::TensorProto& t, const std::string& what) {
  if (t.data_type() != onnx::TensorProto::FLOAT && t.data_type() != onnx::TensorProto::INT64) return;
  if (t.data_location() == onnx::TensorProto::EXTERNAL || t.external_data_size() > 0)
    fail(what, ": tensor '", t.name(), "' keeps its data in an external file, which is not supported");
  const std::size_t n = element_count(t, what);
  const bool is_float = t.data_type() == onnx::TensorProto::FLOAT;
  const std::size_t width = is_float ? sizeof(float) : sizeof(std::int64_t);
  const std::size_t held = t.has_raw_data() ? t.raw_data().size() / width
                           : is_float       ? static_cast<std::size_t>(t.float_data_size())
                                            : static_cast<std::size_t>(t.int64_data_size());
  if (held != n || (t.has_raw_data() && t.raw_data().size() % width != 0))
    fail(what, ": tensor '", t.name(), "' declares ", shape_str(Shape(t.dims().begin(), t.dims().end())),
         " (", n, " values) but holds ", held,
         n > (std::size_t{1} << 28) ? " (a declared size past 1 GB)" : "");
}

}  // namespace tg::onnx_detail
