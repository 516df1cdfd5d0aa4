// The rooms of the layout hold: every project-internal `#include` of core/, layers/, optim/, data/, apps/ and
// tapegrad.hpp points along an arrow of kAllowedArrows (the table the docs mirror beside the layout).
// Includes of the standard library, xtensor, xsimd, BLAS, nlohmann-json, stb, MPI... are outside this check;
// core/xt.hpp (xtensor through one header of ours) is a room of its own. The checker also runs on a small
// synthetic tree with upward includes, so that it is seen to catch them.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "test_util.hpp"

namespace {

namespace fs = std::filesystem;

// Room -> the rooms its files may include. A room is a folder of core/ ("core/ops"), core/xt.hpp, a top-level
// folder ("layers") or tapegrad.hpp; every room may include its own files. "core/*" is every room of core/
// (core/xt.hpp included), "*" every room.
struct Room {
  std::string_view name;
  std::vector<std::string_view> may_include;
};
const std::vector<Room> kAllowedArrows = {
    {"core/base", {}},
    {"core/xt.hpp", {}},
    {"core/runtime", {"core/base", "core/xt.hpp"}},
    {"core/io", {"core/base", "core/xt.hpp"}},
    {"core/kernels", {"core/runtime", "core/base", "core/xt.hpp"}},
    {"core/autograd", {"core/runtime", "core/base", "core/xt.hpp"}},
    {"core/ops", {"core/autograd", "core/kernels", "core/runtime", "core/base", "core/xt.hpp"}},
    {"core/distributed", {"core/autograd", "core/runtime", "core/base", "core/xt.hpp"}},
    {"layers", {"core/*"}},
    {"optim", {"core/*"}},
    {"data", {"core/*"}},
    {"apps", {"*"}},
    {"tapegrad.hpp", {"*"}},
};

// The folders (and the file) whose includes are checked.
const std::vector<std::string> kChecked = {"core", "layers", "optim", "data", "apps", "tapegrad.hpp"};

// The room of a file, from its path relative to the source root; "" when it is in none.
std::string room_of(const std::string& path) {
  if (path == "tapegrad.hpp") return path;
  const std::size_t slash = path.find('/');
  if (slash == std::string::npos) return "";
  const std::string top = path.substr(0, slash);
  if (top != "core") return top == "layers" || top == "optim" || top == "data" || top == "apps" ? top : "";
  const std::size_t second = path.find('/', slash + 1);
  return second == std::string::npos ? path : path.substr(0, second);  // core/xt.hpp, or core/<folder>
}

const Room* find_room(const std::string& name) {
  const auto it = std::find_if(kAllowedArrows.begin(), kAllowedArrows.end(),
                               [&](const Room& r) { return r.name == name; });
  return it == kAllowedArrows.end() ? nullptr : &*it;
}

bool allowed(const Room& from, const std::string& to) {
  if (from.name == to) return true;
  return std::any_of(from.may_include.begin(), from.may_include.end(), [&](std::string_view entry) {
    if (entry == "*" || entry == to) return true;
    return entry.ends_with("/*") && to.starts_with(entry.substr(0, entry.size() - 1));
  });
}

// What an include names, as a path relative to the root, when it is a file of the tree: looked up beside the
// including file (quoted includes only), then in the build's include folders (the root; apps/ and apps/cli/,
// where the command line's internal headers are). "" for anything else (std, xtensor, ...).
std::string resolve(const fs::path& root, const std::string& from, const std::string& name, bool quoted) {
  std::vector<fs::path> bases;
  if (quoted) bases.push_back(root / fs::path(from).parent_path());
  for (const char* dir : {"", "apps", "apps/cli"}) bases.push_back(root / dir);
  for (const fs::path& base : bases) {
    const fs::path candidate = (base / name).lexically_normal();
    std::error_code ec;
    if (!fs::is_regular_file(candidate, ec)) continue;
    const std::string relative = candidate.lexically_relative(root).generic_string();
    return relative.starts_with("..") ? "" : relative;  // outside the tree: not ours
  }
  return "";
}

struct Violation {
  std::string where;  // file:line
  std::string arrow;  // "core/kernels -> core/ops"
  std::string line;   // the include line
};

struct RoomReport {
  std::vector<Violation> violations;
  std::size_t files = 0, includes = 0;  // files read, project-internal includes checked
  std::string text() const {
    std::string out;
    for (const Violation& v : violations)
      out += v.where + ": " + v.arrow + (v.line.empty() ? "" : ": " + v.line) + "\n";
    return out;
  }
};

// Every .hpp/.cpp under the checked folders of `root`, each project-internal include against kAllowedArrows.
// A file (or an included file) in a room the table lacks is a violation too: a new room needs its row.
RoomReport check_rooms(const fs::path& root) {
  std::vector<std::string> files;
  for (const std::string& top : kChecked) {
    const fs::path p = root / top;
    if (fs::is_regular_file(p)) files.push_back(top);
    if (!fs::is_directory(p)) continue;
    for (const auto& entry : fs::recursive_directory_iterator(p)) {
      const std::string ext = entry.path().extension().string();
      if (entry.is_regular_file() && (ext == ".hpp" || ext == ".cpp"))
        files.push_back(entry.path().lexically_relative(root).generic_string());
    }
  }
  std::sort(files.begin(), files.end());
  static const std::regex include_line(R"(^\s*#\s*include\s*([<"])([^>"]+)[>"])");
  RoomReport report;
  for (const std::string& file : files) {
    ++report.files;
    const std::string from = room_of(file);
    const Room* rules = find_room(from);
    if (!rules) {
      report.violations.push_back(
          {file + ":1", (from.empty() ? file : from) + " is not a room of kAllowedArrows", ""});
      continue;
    }
    std::ifstream in(root / file);
    std::string line;
    for (int number = 1; std::getline(in, line); ++number) {
      std::smatch m;
      if (!std::regex_search(line, m, include_line)) continue;
      const std::string target = resolve(root, file, m[2], m[1] == "\"");
      if (target.empty()) continue;
      ++report.includes;
      const std::string to = room_of(target);
      const std::string where = file + ":" + std::to_string(number);
      if (!find_room(to)) {
        report.violations.push_back(
            {where, from + " -> " + (to.empty() ? target : to) + " (not a room of kAllowedArrows)", line});
      } else if (!allowed(*rules, to)) {
        report.violations.push_back({where, from + " -> " + to, line});
      }
    }
  }
  return report;
}

void write_file(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

}  // namespace

TEST_CASE("every include of core/, layers/, optim/, data/, apps/ and tapegrad.hpp follows an allowed arrow") {
  const RoomReport report = check_rooms(TAPEGRAD_SOURCE_DIR);
  INFO("includes that kAllowedArrows (tests/core/test_rooms.cpp) forbids:\n", report.text());
  CHECK(report.violations.empty());
  CHECK(report.files > 100);  // the tree was read, not an empty folder
  CHECK(report.includes > 200);
}

TEST_CASE("the room checker reports upward includes by file:line and arrow, and nothing else") {
  const test_util::TempDir dir;
  const fs::path root = dir.path;
  write_file(root / "core/xt.hpp", "#include <xtensor/xarray.hpp>\n");
  write_file(root / "core/base/error.hpp", "#include <string>\n");
  write_file(root / "core/base/shape.hpp",
             "#include <vector>\n#include \"core/xt.hpp\"\n");  // base: std only
  write_file(root / "core/runtime/threads.hpp", "#include \"core/base/error.hpp\"\n");
  write_file(root / "core/ops/conv2d.hpp", "#include \"core/kernels/conv2d.hpp\"\n");
  write_file(root / "core/kernels/conv2d.hpp",
             "#include <cstddef>\n"
             "#include \"core/runtime/threads.hpp\"\n"
             "#include \"core/ops/conv2d.hpp\"\n");                         // kernels -> ops: upward
  write_file(root / "core/kernels/gemm.cpp", "#include \"conv2d.hpp\"\n");  // beside it: the same room
  write_file(root / "layers/module.hpp", "#include \"core/ops/conv2d.hpp\"\n");
  write_file(root / "optim/sgd.cpp", "#include \"core/xt.hpp\"\n#include \"optim/sgd.hpp\"\n");
  write_file(root / "optim/sgd.hpp", "");
  write_file(root / "data/image.cpp",
             "#include \"core/base/error.hpp\"\n"
             "  #  include \"layers/module.hpp\"\n"  // data -> layers
             "#include \"../optim/sgd.hpp\"\n");     // data -> optim, by a relative path
  write_file(root / "core/extra/x.hpp", "");         // a room the table lacks
  write_file(root / "apps/cli/train.cpp", "#include \"tapegrad.hpp\"\n#include \"core/extra/x.hpp\"\n");
  write_file(root / "tapegrad.hpp", "#include \"layers/module.hpp\"\n#include \"data/image.hpp\"\n");

  const RoomReport report = check_rooms(root);
  INFO(report.text());
  std::vector<std::string> found;
  for (const Violation& v : report.violations) found.push_back(v.where + " " + v.arrow);
  const std::vector<std::string> expected = {
      "apps/cli/train.cpp:2 apps -> core/extra (not a room of kAllowedArrows)",
      "core/base/shape.hpp:2 core/base -> core/xt.hpp",
      "core/extra/x.hpp:1 core/extra is not a room of kAllowedArrows",
      "core/kernels/conv2d.hpp:3 core/kernels -> core/ops",
      "data/image.cpp:2 data -> layers",
      "data/image.cpp:3 data -> optim",
  };
  CHECK(found == expected);
  CHECK(report.files == 14);
}
