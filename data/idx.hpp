// IDX files (the MNIST format), raw or gzipped: read, validated, with errors that name the file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace tg {

// An unsigned-byte IDX array: dims (e.g. [60000, 28, 28]) and the row-major payload.
struct IdxArray {
  std::vector<std::size_t> dims;
  std::vector<std::uint8_t> data;
};

// The whole file as bytes; a path ending in ".gz" is decompressed (zlib). At most `max_bytes` are accepted
// (a guard against a corrupt or hostile gzip stream). Throws tg::Error naming the file on any failure.
std::vector<std::uint8_t> read_file_bytes(const std::string& path,
                                          std::size_t max_bytes = std::size_t{1} << 30);

// Parses an IDX file of unsigned bytes (type 0x08). Checks the magic number, the number of dimensions
// (1 to 4), that the dimensions' product neither overflows nor differs from the payload size, and reports
// truncated or oversized files with the sizes found.
IdxArray read_idx(const std::string& path);
IdxArray parse_idx(const std::vector<std::uint8_t>& bytes, const std::string& name);

// The big-endian 32-bit count at `p` (IDX headers store their dimensions so).
inline std::uint32_t read_be32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

}  // namespace tg
