// libFuzzer harness for tg::model_from_text (layers/model_file.hpp), input [1, 12, 12], 3 classes, with
// lowered limits (4,096 bytes, 64 layers, 100,000 parameters, 100,000 elements per layer output) so that no
// input allocates much. Checks: any byte string either builds a model or throws tg::Error, and a model
// built is consistent: its output shape is [3] and model_to_text of it builds a model with the same text and
// the same state keys and shapes. The seed corpus covers blocks (residual / shortcut / end, repeat, 'in',
// relu6): nesting past the depth limit, unclosed blocks and repeat counts past their limit must be errors.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "tapegrad.hpp"

namespace {

std::vector<std::pair<std::string, tg::Shape>> state_shapes(const tg::Module& m) {
  std::vector<std::pair<std::string, tg::Shape>> out;
  for (const auto& [name, t] : m.named_state()) out.emplace_back(name, t.shape());
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const tg::Shape input{1, 12, 12};
  const int classes = 3;
  tg::ModelFileLimits limits;
  limits.max_bytes = 4096;
  limits.max_layers = 64;
  limits.max_parameters = 100000;
  limits.max_output_elements = 100000;
  try {
    tg::Sequential model = tg::model_from_text(text, input, classes, "fuzz.tg", limits);
    if (model.output_shape(input) != tg::Shape{3}) std::abort();
    const std::string printed = tg::model_to_text(model);
    tg::Sequential again = tg::model_from_text(printed, input, classes, "printed.tg", limits);
    if (tg::model_to_text(again) != printed || state_shapes(again) != state_shapes(model)) std::abort();
  } catch (const tg::Error&) {
    // rejected input: the expected outcome for most mutations
  }
  return 0;
}
