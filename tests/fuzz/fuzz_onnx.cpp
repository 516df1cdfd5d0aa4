// libFuzzer harness for tg::import_onnx (layers/onnx/onnx.hpp): any bytes either import or throw tg::Error.
// An import is checked for consistency: its model's output is [classes], and its model text builds a model
// with the same state keys and shapes. Inputs over 4 MiB are ignored. The seed corpus is the committed
// fixtures (tests/fixtures/onnx: PyTorch's and the bad_*.onnx files), copied by make_corpus.py.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "layers/onnx/onnx.hpp"
#include "tapegrad.hpp"

namespace {

std::vector<std::pair<std::string, tg::Shape>> onnx_state_shapes(const tg::Module& m) {
  std::vector<std::pair<std::string, tg::Shape>> out;
  for (const auto& [name, t] : m.named_state()) out.emplace_back(name, t.shape());
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > (std::size_t{4} << 20)) return 0;
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  tg::ImportedOnnx imported;
  try {
    imported = tg::import_onnx(bytes, "fuzz.onnx", {1, 8, 8});
  } catch (const tg::Error&) {
    return 0;
  }
  const tg::Shape out = imported.model.output_shape(imported.info.input);
  if (out != tg::Shape{imported.classes}) std::abort();
  const tg::Sequential again =
      tg::model_from_text(imported.model_text, imported.info.input, static_cast<int>(imported.classes));
  if (onnx_state_shapes(again) != onnx_state_shapes(imported.model)) std::abort();
  return 0;
}
