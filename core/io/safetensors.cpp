#include "core/io/safetensors.hpp"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/base/error.hpp"
#include "core/io/atomic_file.hpp"

static_assert(std::endian::native == std::endian::little,
              "tapegrad's file formats assume a little-endian host");

namespace tg {
namespace {

constexpr std::uint64_t kMaxHeader = 100u << 20;  // 100 MiB of JSON is far beyond any real checkpoint
constexpr std::uintmax_t kMaxFile = std::uintmax_t{4} << 30;  // 4 GiB: 1 billion float32 parameters

}  // namespace

void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, const Array*>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::size_t offset = 0;
  for (const auto& [name, array] : tensors) {
    if (name == "__metadata__" || header.contains(name))
      fail("save: duplicate or reserved tensor name '", name, "'");
    const std::size_t bytes = array->size() * sizeof(float);
    header[name] = {{"dtype", "F32"},
                    {"shape", std::vector<std::size_t>(array->shape().begin(), array->shape().end())},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // pad with spaces so the data is 8-byte aligned
  const std::uint64_t header_size = text.size();
  std::vector<std::pair<const void*, std::size_t>> chunks = {{&header_size, 8}, {text.data(), text.size()}};
  for (const auto& [name, array] : tensors) chunks.emplace_back(array->data(), array->size() * sizeof(float));
  write_file_atomically(path, chunks);
}

SafetensorsFile parse_safetensors(const std::vector<std::uint8_t>& bytes, const std::string& name) {
  if (bytes.size() < 8)
    fail(name, ": not a safetensors file (", bytes.size(), " bytes, the header length alone is 8)");
  std::uint64_t header_size = 0;
  std::memcpy(&header_size, bytes.data(), 8);
  if (header_size > bytes.size() - 8 || header_size > kMaxHeader) {
    fail(name, ": not a safetensors file or truncated: header length ", header_size, " but the file has ",
         bytes.size() - 8, " bytes after it");
  }
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes.begin() + 8,
                                   bytes.begin() + 8 + static_cast<std::ptrdiff_t>(header_size));
  } catch (const nlohmann::json::exception& e) {
    fail(name, ": malformed safetensors header (", e.what(), ")");
  }
  if (!header.is_object()) fail(name, ": malformed safetensors header (not a JSON object)");
  const std::size_t data_size = bytes.size() - 8 - header_size;
  const std::uint8_t* data = bytes.data() + 8 + header_size;

  SafetensorsFile out;
  std::vector<std::pair<std::size_t, std::size_t>> ranges;  // to check for overlaps
  struct Entry {
    std::string key;
    std::size_t begin;
    Shape shape;
  };
  std::vector<Entry> entries;
  for (const auto& [key, info] : header.items()) {
    if (key == "__metadata__") {
      if (!info.is_object()) fail(name, ": __metadata__ must be an object of strings");
      for (const auto& [mk, mv] : info.items()) {
        if (!mv.is_string()) fail(name, ": __metadata__ entry '", mk, "' is not a string");
        out.metadata[mk] = mv.get<std::string>();
      }
      continue;
    }
    const std::string where = name + ": tensor '" + key + "'";
    if (!info.is_object() || !info.contains("dtype") || !info.contains("shape") ||
        !info.contains("data_offsets")) {
      fail(where, " needs dtype, shape and data_offsets");
    }
    if (!info["dtype"].is_string() || info["dtype"] != "F32") {
      fail(where, " has dtype ", info["dtype"].dump(), ", tapegrad reads F32 only");
    }
    const auto& shape_json = info["shape"];
    const auto& offsets = info["data_offsets"];
    if (!shape_json.is_array() || shape_json.size() > 8)
      fail(where, ": shape must be an array of at most 8 sizes");
    Shape shape(shape_json.size());
    // count: the elements; span: the product of the nonzero sizes, bounded too, since a 0 among huge sizes
    // has no elements but strides that overflow a signed 64-bit integer in xtensor
    std::size_t count = 1, span = 1;
    for (std::size_t i = 0; i < shape_json.size(); ++i) {
      if (!shape_json[i].is_number_unsigned())
        fail(where, ": shape ", shape_json.dump(), " is not all sizes >= 0");
      shape[i] = shape_json[i].get<std::size_t>();
      const std::size_t f = std::max<std::size_t>(shape[i], 1);
      if (span > static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max()) / 16 / f)
        fail(where, ": shape ", shape_json.dump(), " overflows");
      span *= f;
      count *= shape[i];
    }
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
        !offsets[1].is_number_unsigned()) {
      fail(where, ": data_offsets must be [begin, end]");
    }
    const auto begin = offsets[0].get<std::size_t>(), end = offsets[1].get<std::size_t>();
    if (begin > end || end > data_size) {
      fail(where, ": data_offsets [", begin, ", ", end, "] are outside the ", data_size, " data bytes");
    }
    if (end - begin != count * sizeof(float)) {
      fail(where, ": shape ", shape_str(shape), " needs ", count * sizeof(float),
           " bytes, data_offsets give ", end - begin);
    }
    ranges.emplace_back(begin, end);
    entries.push_back({key, begin, shape});
  }
  std::sort(ranges.begin(), ranges.end());
  for (std::size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].first < ranges[i - 1].second) fail(name, ": tensors' data_offsets overlap");
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.begin < b.begin; });
  for (const Entry& e : entries) {
    Array value = Array::from_shape(e.shape);
    if (value.size() > 0) std::memcpy(value.data(), data + e.begin, value.size() * sizeof(float));
    out.tensors.emplace_back(e.key, std::move(value));
  }
  return out;
}

SafetensorsFile read_safetensors(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) fail(path, ": file not found");
  if (std::filesystem::is_directory(path, ec)) fail(path, ": is a directory, expected a safetensors file");
  if (!std::filesystem::is_regular_file(path, ec)) fail(path, ": not a regular file");
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) fail(path, ": cannot read its size (", ec.message(), ")");
  if (size > kMaxFile) fail(path, ": ", size, " bytes, more than the ", kMaxFile, " a checkpoint may have");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open for reading");
  std::vector<std::uint8_t> bytes(size);
  if (size > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size))) {
    fail(path, ": read error");
  }
  return parse_safetensors(bytes, path);
}

}  // namespace tg
