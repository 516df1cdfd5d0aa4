// The repository as a whole: it documents itself (no file points at notes outside it, every link between its
// pages reaches a file and a heading), and no source file grows past what a reader holds (~400 lines) without
// saying at its top why it is one file.
#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
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

namespace {

// GitHub's anchor of a heading: lower case, letters, digits, '-' and '_' kept, spaces to '-', the rest
// dropped.
std::string anchor_of(const std::string& heading) {
  std::string out;
  for (unsigned char c : heading) {
    if (std::isalnum(c) || c == '-' || c == '_') {
      out += static_cast<char>(std::tolower(c));
    } else if (c == ' ') {
      out += '-';
    }
  }
  return out;
}

std::vector<std::string> anchors_of(const fs::path& page) {
  std::vector<std::string> anchors;
  bool in_code = false;
  for (const std::string& line : lines_of(page)) {
    if (line.starts_with("```")) in_code = !in_code;
    if (in_code || !line.starts_with("#")) continue;
    const std::size_t text = line.find_first_not_of('#');
    if (text != std::string::npos && line[text] == ' ') anchors.push_back(anchor_of(line.substr(text + 1)));
  }
  return anchors;
}

}  // namespace

TEST_CASE(
    "repository: every relative link of README.md and docs/ reaches a file, and its #anchor a heading") {
  std::ostringstream broken;
  std::size_t links = 0;
  for (const fs::path& page : tree_files()) {
    if (page.extension() != ".md") continue;
    const std::vector<std::string> lines = lines_of(page);
    bool in_code = false;
    for (std::size_t i = 0; i < lines.size(); ++i) {
      if (lines[i].starts_with("```")) in_code = !in_code;
      if (in_code) continue;
      for (std::size_t at = lines[i].find("]("); at != std::string::npos; at = lines[i].find("](", at + 2)) {
        const std::size_t end = lines[i].find(')', at + 2);
        if (end == std::string::npos) continue;
        const std::string target = lines[i].substr(at + 2, end - at - 2);
        if (target.empty() || target.find("://") != std::string::npos || target.starts_with("mailto:"))
          continue;
        ++links;
        const std::size_t hash = target.find('#');
        const std::string file = target.substr(0, hash),
                          anchor = hash == std::string::npos ? "" : target.substr(hash + 1);
        const fs::path resolved = file.empty() ? page : page.parent_path() / file;
        const std::string where =
            fs::relative(page, kRoot).string() + ":" + std::to_string(i + 1) + ": " + target;
        if (!fs::exists(resolved)) {
          broken << where << " (no such file)\n";
        } else if (!anchor.empty() && resolved.extension() == ".md") {
          const std::vector<std::string> anchors = anchors_of(resolved);
          if (std::find(anchors.begin(), anchors.end(), anchor) == anchors.end())
            broken << where << " (no heading with that anchor)\n";
        }
      }
    }
  }
  INFO("broken links:\n", broken.str());
  CHECK(broken.str().empty());
  CHECK(links > 30);  // the pages do link to each other: the scan found them
}
