// The repository as a whole: it documents itself (no file points at notes outside it), and no source file
// grows past what a reader holds (~400 lines) without saying at its top why it is one file.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

const fs::path kRoot = TAPEGRAD_SOURCE_DIR;

// Every text file of the tree that a user or contributor reads: sources, scripts, build files, docs.
std::vector<fs::path> tree_files() {
  const std::vector<std::string> extensions = {".cpp", ".hpp", ".py",  ".cmake", ".sh",
                                               ".md",  ".tg",  ".txt", ".in"};
  std::vector<fs::path> files;
  for (auto it = fs::recursive_directory_iterator(kRoot); it != fs::recursive_directory_iterator(); ++it) {
    const std::string name = it->path().filename().string();
    if (it->is_directory() && (name.starts_with(".") || name.starts_with("build") || name == "runs" ||
                               name == "fixtures" || name == "corpus" || name == "node_modules")) {
      it.disable_recursion_pending();
      continue;
    }
    const std::string ext = it->path().extension().string();
    const bool known = name == "Makefile" || name == "run" ||
                       std::find(extensions.begin(), extensions.end(), ext) != extensions.end();
    if (it->is_regular_file() && known) files.push_back(it->path());
  }
  for (const char* top : {".ci/run", ".clang-format", ".gitignore"}) {
    if (fs::exists(kRoot / top)) files.push_back(kRoot / top);
  }
  return files;
}

std::vector<std::string> lines_of(const fs::path& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace

TEST_CASE("repository: no file points at the team's notes outside the repository (docs/ explains it)") {
  // The team's notes are not shipped: a reference to them is a dangling link for every user.
  // The names are spelled in pieces so that this file does not itself hold what it looks for.
  const std::string dir = std::string("..") + "/" + "shared", md = ".md";
  const std::vector<std::string> outside = {dir,           dir.substr(3) + "/API", "API" + md,
                                            "DESIGN" + md, "BENCHMARKS" + md,      "STYLE" + md};
  std::ostringstream found;
  const std::vector<fs::path> files = tree_files();
  REQUIRE(files.size() > 100);  // the walk saw the tree
  for (const fs::path& file : files) {
    const std::vector<std::string> lines = lines_of(file);
    for (std::size_t i = 0; i < lines.size(); ++i) {
      for (const std::string& word : outside) {
        if (lines[i].find(word) != std::string::npos) {
          found << fs::relative(file, kRoot).string() << ':' << i + 1 << ": " << word << '\n';
        }
      }
    }
  }
  CHECK_MESSAGE(found.str().empty(), "references to notes outside the repository:\n" << found.str());
}

TEST_CASE("repository: a source file over 400 lines says at its top why it is one file") {
  // The marker: one of the first 20 lines contains "one file" (e.g. "Why one file: ...").
  std::ostringstream found;
  for (const fs::path& file : tree_files()) {
    const std::string ext = file.extension().string();
    if (ext != ".cpp" && ext != ".hpp" && ext != ".py" && ext != ".cmake" && ext != ".sh") continue;
    const std::vector<std::string> lines = lines_of(file);
    if (lines.size() <= 400) continue;
    bool says_why = false;
    for (std::size_t i = 0; i < lines.size() && i < 20; ++i)
      says_why |= lines[i].find("one file") != std::string::npos;
    if (!says_why) found << fs::relative(file, kRoot).string() << ": " << lines.size() << " lines\n";
  }
  CHECK_MESSAGE(found.str().empty(), "files over 400 lines without a reason at the top:\n" << found.str());
}
