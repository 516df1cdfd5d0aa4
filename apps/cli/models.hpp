// Where a model comes from: a built-in name (the files of apps/models/, compiled into the library) or a
// model file's path.
#pragma once

#include <string>
#include <vector>

namespace tg::cli {

struct ModelText {
  std::string name;    // "lenet", or the file's stem ("nets/small.tg" -> "small")
  std::string source;  // names it in errors and on the tape: "lenet.tg", or the path as given
  std::string text;    // the model file's text, comments included
};

// `name_or_path`: a built-in name or a path to a model file. tg::ModelFileError (a usage error) when it is
// neither, naming the built-ins; tg::Error when the file cannot be read.
ModelText find_model(const std::string& name_or_path);

// "lenet", "convnet", ... (sorted).
std::vector<std::string> builtin_model_names();

}  // namespace tg::cli
