// libFuzzer harness for tg::parse_safetensors (core/io/safetensors.hpp).
// Checks: any byte string either parses or throws tg::Error (no crash, out-of-bounds read of the data
// section, sanitizer report, leak, stray nlohmann::json exception or other exception), and every tensor
// of a successful parse has at most 8 dimensions and the element count its shape says.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "tapegrad.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::vector<std::uint8_t> bytes(data, data + size);
  try {
    const tg::SafetensorsFile file = tg::parse_safetensors(bytes, "fuzz.safetensors");
    for (const auto& [key, value] : file.tensors) {
      std::size_t count = 1;
      for (const std::size_t d : value.shape()) count *= d;
      if (value.dimension() > 8 || count != value.size()) std::abort();
    }
  } catch (const tg::Error&) {
    // rejected input: the expected outcome for most mutations
  }
  return 0;
}
