// libFuzzer harness for tg::parse_idx (data/idx.hpp).
// Checks: any byte string either parses or throws tg::Error (no crash, sanitizer report, leak or other
// exception), and a successful parse is consistent: 1 to 4 dims whose product is the payload size.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <numeric>
#include <vector>

#include "tapegrad.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::vector<std::uint8_t> bytes(data, data + size);
  try {
    const tg::IdxArray idx = tg::parse_idx(bytes, "fuzz.idx");
    const std::size_t count =
        std::accumulate(idx.dims.begin(), idx.dims.end(), std::size_t{1}, std::multiplies<>());
    if (idx.dims.empty() || idx.dims.size() > 4 || count != idx.data.size()) std::abort();
  } catch (const tg::Error&) {
    // rejected input: the expected outcome for most mutations
  }
  return 0;
}
