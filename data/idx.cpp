#include "data/idx.hpp"

#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <limits>

#include "core/base/error.hpp"

namespace tg {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void check_regular_file(const std::string& path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) fail(path, ": file not found");
  if (std::filesystem::is_directory(status)) fail(path, ": is a directory, expected a file");
}

std::vector<std::uint8_t> read_gzip(const std::string& path, std::size_t max_bytes) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) fail(path, ": cannot open");
  std::vector<std::uint8_t> out;
  std::uint8_t chunk[1 << 16];
  for (;;) {
    const int n = gzread(f, chunk, sizeof chunk);
    if (n < 0) {
      int errnum = 0;
      const std::string msg = gzerror(f, &errnum);
      gzclose(f);
      fail(path, ": corrupt gzip data (", msg, ")");
    }
    if (n == 0) break;
    if (out.size() + static_cast<std::size_t>(n) > max_bytes) {
      gzclose(f);
      fail(path, ": decompresses to more than ", max_bytes, " bytes");
    }
    out.insert(out.end(), chunk, chunk + n);
  }
  // gzread returns 0 at a premature end of a truncated stream too; gzerror tells them apart
  int errnum = 0;
  const std::string msg = gzerror(f, &errnum);
  gzclose(f);
  if (errnum != Z_OK && errnum != Z_STREAM_END) fail(path, ": corrupt or truncated gzip data (", msg, ")");
  return out;
}

}  // namespace

std::vector<std::uint8_t> read_file_bytes(const std::string& path, std::size_t max_bytes) {
  check_regular_file(path);
  if (ends_with(path, ".gz")) return read_gzip(path, max_bytes);
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail(path, ": cannot open for reading");
  std::vector<std::uint8_t> out;
  std::uint8_t chunk[1 << 16];
  std::size_t n = 0;
  while ((n = std::fread(chunk, 1, sizeof chunk, f)) > 0) {
    if (out.size() + n > max_bytes) {
      std::fclose(f);
      fail(path, ": larger than ", max_bytes, " bytes");
    }
    out.insert(out.end(), chunk, chunk + n);
  }
  const bool error = std::ferror(f) != 0;
  std::fclose(f);
  if (error) fail(path, ": read error");
  return out;
}

IdxArray parse_idx(const std::vector<std::uint8_t>& bytes, const std::string& name) {
  if (bytes.empty()) fail(name, ": empty file, expected an IDX header");
  if (bytes.size() < 4) fail(name, ": truncated IDX header (", bytes.size(), " bytes)");
  if (bytes[0] != 0 || bytes[1] != 0) {
    fail(name, ": not an IDX file (magic number starts with ", int(bytes[0]), ", ", int(bytes[1]),
         "; expected 0, 0)");
  }
  if (bytes[2] != 0x08) {
    fail(name, ": IDX data type 0x", std::hex, int(bytes[2]), std::dec,
         " is not supported, expected 0x08 (unsigned byte)");
  }
  const std::size_t ndim = bytes[3];
  if (ndim < 1 || ndim > 4) fail(name, ": IDX header has ", ndim, " dimensions, expected 1 to 4");
  const std::size_t header = 4 + 4 * ndim;
  if (bytes.size() < header) {
    fail(name, ": truncated IDX header: ", ndim, " dimensions need ", header, " bytes, file has ",
         bytes.size());
  }
  IdxArray out;
  std::size_t count = 1;
  for (std::size_t i = 0; i < ndim; ++i) {
    const std::size_t d = read_be32(bytes.data() + 4 + 4 * i);
    if (d != 0 && count > std::numeric_limits<std::size_t>::max() / d)
      fail(name, ": IDX dimensions overflow");
    count *= d;
    out.dims.push_back(d);
  }
  const std::size_t payload = bytes.size() - header;
  if (payload < count) {
    fail(name, ": truncated: the header ", shape_str(out.dims), " needs ", count,
         " bytes of data, the file has ", payload);
  }
  if (payload > count) {
    fail(name, ": ", payload - count, " unexpected bytes after the ", shape_str(out.dims), " data");
  }
  out.data.assign(bytes.begin() + static_cast<std::ptrdiff_t>(header), bytes.end());
  return out;
}

IdxArray read_idx(const std::string& path) { return parse_idx(read_file_bytes(path), path); }

}  // namespace tg
