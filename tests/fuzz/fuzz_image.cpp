// libFuzzer harness for the image decoder (data/image.hpp) as predict and image folders use it:
// load_image_from_memory with the 28x28 gray target of MNIST, and decode_image to 3x32x32 RGB bytes (the
// path of an image folder's colour images, resized). Checks: any byte string either decodes or throws
// tg::Error (no crash, sanitizer report in our wrapper, leak of stb's pixel buffer or other exception), a
// decoded image is [1, 1, 28, 28] of finite values, and decode_image returns 3 x 32 x 32 bytes.
// The decoder is Debian's prebuilt libstb, not instrumented: ASan sees its allocations but not its reads.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "tapegrad.hpp"

namespace {
constexpr std::size_t kMaxInput = std::size_t{1} << 20;  // larger inputs only slow the fuzzer down
constexpr std::size_t kSide = 28;
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > kMaxInput) return 0;
  const std::vector<std::uint8_t> bytes(data, data + size);
  try {
    const tg::Array image = tg::load_image_from_memory(bytes, kSide, kSide, {}, "fuzz.img");
    if (image.dimension() != 4 || image.size() != kSide * kSide) std::abort();
    for (std::size_t i = 0; i < image.size(); ++i) {
      if (!std::isfinite(image.data()[i])) std::abort();
    }
  } catch (const tg::Error&) {
    // rejected input: the expected outcome for most mutations
  }
  try {
    if (tg::decode_image(bytes, 32, 32, 3, "fuzz.img").size() != 3 * 32 * 32) std::abort();
  } catch (const tg::Error&) {
  }
  return 0;
}
