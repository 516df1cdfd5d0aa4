// Atomic file writes (core/io/atomic_file.hpp): a write goes to a temp file renamed into place, so a failed
// save leaves the previous file intact.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "tapegrad.hpp"
#include "test_util.hpp"

namespace fs = std::filesystem;
using namespace test_util;
using tg::Array;
using tg::Tensor;

namespace {

tg::Sequential small_model() { return tg::Sequential(tg::Linear(4, 3), tg::ReLU(), tg::Linear(3, 2)); }

}  // namespace

TEST_CASE("a save that fails leaves the previous checkpoint intact and says so") {
  TempDir dir;
  const ScopedSeed seed(4);
  tg::Sequential model = small_model();
  const std::string path = dir.file("keep.safetensors");
  tg::save(model, path);
  const auto size_before = fs::file_size(path);
  CHECK_THROWS_WITH_AS(tg::save(model, dir.file("no/such/folder/x.safetensors")),
                       doctest::Contains("cannot write"), tg::Error);
  if (::geteuid() != 0) {  // root ignores permissions
    fs::permissions(dir.path, fs::perms::owner_write, fs::perm_options::remove);
    CHECK_THROWS_WITH_AS(tg::save(model, path), doctest::Contains("unchanged"), tg::Error);
    fs::permissions(dir.path, fs::perms::owner_write, fs::perm_options::add);
  }
  CHECK(fs::file_size(path) == size_before);
  tg::Sequential again = small_model();
  CHECK_NOTHROW(tg::load(again, path));
  for (const auto& entry : fs::directory_iterator(dir.path)) {  // no temp file left behind
    CHECK(entry.path().filename().string().find(".tmp.") == std::string::npos);
  }
}
