# Writes OUT, a .cpp defining tg::cli::builtin_models(): every MODELS_DIR/*.tg as (name, text), so the built-in
# model names work from any binary, installed or not. Run at configure time by apps/CMakeLists.txt.
file(GLOB model_files ${MODELS_DIR}/*.tg)
list(SORT model_files)
set(body "")
foreach(file ${model_files})
  get_filename_component(name ${file} NAME_WE)
  file(READ ${file} text)
  string(APPEND body "      {\"${name}\", R\"tapegrad(${text})tapegrad\"},\n")
endforeach()
file(WRITE ${OUT}.tmp "// Generated from apps/models/*.tg by apps/cli/embed_models.cmake; do not edit.
#include <string>
#include <utility>
#include <vector>

namespace tg::cli {
const std::vector<std::pair<std::string, std::string>>& builtin_models() {
  static const std::vector<std::pair<std::string, std::string>> models{
${body}  };
  return models;
}
}  // namespace tg::cli
")
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)
file(REMOVE ${OUT}.tmp)
