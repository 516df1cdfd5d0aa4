// libFuzzer harness for tg::parse_cifar10_class_names and tg::parse_cifar10_batch (data/cifar10.hpp).
// The input is read both as a batches.meta.txt and as a batch file, the latter with the class count of the
// former (10, CIFAR-10's, when the text holds no names). Checks: each either parses or throws tg::Error (no
// crash, sanitizer report, leak or other exception); 1 to 256 names, none empty or with a line break or
// trailing blank; records whose labels are below the class count and whose 3072 bytes are the input's.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/base/error.hpp"
#include "data/cifar10.hpp"

namespace {
constexpr std::size_t kMaxInput = std::size_t{1} << 20;  // a few hundred records: more only slows it down
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > kMaxInput) return 0;
  std::size_t classes = 10;
  try {
    const std::vector<std::string> names =
        tg::parse_cifar10_class_names(std::string(reinterpret_cast<const char*>(data), size), "fuzz.txt");
    if (names.empty() || names.size() > 256) std::abort();
    for (const std::string& name : names) {
      if (name.empty() || name.find('\n') != std::string::npos || name.back() == '\r' || name.back() == ' ' ||
          name.back() == '\t')
        std::abort();
    }
    classes = names.size();
  } catch (const tg::Error&) {
    // rejected input: no names
  }
  const std::vector<std::uint8_t> bytes(data, data + size);
  try {
    const tg::CifarRecords records = tg::parse_cifar10_batch(bytes, "fuzz.bin", classes);
    const std::size_t n = records.labels.size();
    if (n == 0 || n * tg::kCifarRecordBytes != size || records.images.size() != n * tg::kCifarImageBytes)
      std::abort();
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint8_t* record = data + i * tg::kCifarRecordBytes;
      if (records.labels[i] != record[0] || static_cast<std::size_t>(records.labels[i]) >= classes ||
          std::memcmp(records.images.data() + i * tg::kCifarImageBytes, record + 1, tg::kCifarImageBytes) !=
              0)
        std::abort();
    }
  } catch (const tg::Error&) {
    // rejected input: the expected outcome for most mutations
  }
  return 0;
}
