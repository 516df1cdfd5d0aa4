// numpy .npy files (format version 1.0): float32, C order, written atomically.
#include "core/io/npy.hpp"

#include <cstdint>

#include "core/io/atomic_file.hpp"

namespace tg {

void dump_npy(const Array& value, const std::string& path) {
  // numpy's tuple syntax: "()", "(5,)", "(2, 3)"
  std::string shape = "(";
  for (std::size_t i = 0; i < value.dimension(); ++i)
    shape += (i ? ", " : "") + std::to_string(value.shape()[i]);
  shape += value.dimension() == 1 ? ",)" : ")";
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
  // magic, version 1.0, header length; the whole preamble padded with spaces to a multiple of 64, ending in
  // \n
  const std::size_t preamble = 10 + header.size() + 1;
  header.append((64 - preamble % 64) % 64, ' ');
  header += '\n';
  std::string head = "\x93NUMPY";
  head += '\x01';
  head += '\x00';
  const auto len = static_cast<std::uint16_t>(header.size());
  head += static_cast<char>(len & 0xFF);
  head += static_cast<char>(len >> 8);
  head += header;
  write_file_atomically(path, {{head.data(), head.size()}, {value.data(), value.size() * sizeof(float)}});
}

}  // namespace tg
