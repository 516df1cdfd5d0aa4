#include "models.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "tapegrad.hpp"

namespace tg::cli {

// builtin_models.cpp (generated from apps/models/*.tg by apps/cli/embed_models.cmake): name, text.
const std::vector<std::pair<std::string, std::string>>& builtin_models();

std::vector<std::string> builtin_model_names() {
  std::vector<std::string> names;
  for (const auto& [name, text] : builtin_models()) names.push_back(name);
  return names;
}

ModelText find_model(const std::string& name_or_path) {
  for (const auto& [name, text] : builtin_models())
    if (name == name_or_path) return {name, name + ".tg", text};
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_regular_file(name_or_path, ec)) {
    std::string names;
    for (const std::string& n : builtin_model_names()) names += (names.empty() ? "" : ", ") + n;
    const std::string near = nearest_name(name_or_path, builtin_model_names());
    throw ModelFileError("--model " + name_or_path + ": neither a built-in model (" + names +
                         ") nor a model file" + (near.empty() ? "" : "; did you mean '" + near + "'?"));
  }
  if (fs::file_size(name_or_path, ec) > kMaxModelFileBytes) {
    throw ModelFileError(name_or_path + ": a model file is at most " + std::to_string(kMaxModelFileBytes) +
                         " bytes; this is " + std::to_string(fs::file_size(name_or_path, ec)));
  }
  std::ifstream in(name_or_path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in && !in.eof()) fail(name_or_path, ": cannot read the model file");
  return {fs::path(name_or_path).stem().string(), name_or_path, text.str()};
}

}  // namespace tg::cli
