// safetensors files (8-byte header length, JSON header, raw little-endian float32 data): the checkpoint
// format, readable by PyTorch and numpy. Writes are atomic; reads validate everything before returning.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/xt.hpp"

namespace tg {

struct SafetensorsFile {
  std::vector<std::pair<std::string, Array>> tensors;  // in file order of their data
  std::map<std::string, std::string> metadata;         // the "__metadata__" entry
};

// Writes to a temporary file beside `path`, syncs it and renames it over `path`: a failed or interrupted
// save leaves any previous file intact. Throws tg::Error naming the path on failure.
void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, const Array*>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// Reads and validates a whole file: header size within the file, well-formed JSON, dtype F32, shapes,
// data offsets in range, consistent with the shapes and not overlapping. Throws tg::Error naming the file.
SafetensorsFile read_safetensors(const std::string& path);
SafetensorsFile parse_safetensors(const std::vector<std::uint8_t>& bytes, const std::string& name);

}  // namespace tg
