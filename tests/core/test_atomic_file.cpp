// Atomic file writes (core/io/atomic_file.hpp): a write goes to a temp file renamed into place, so a failed
// save leaves the previous file intact.
#include <doctest/doctest.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <vector>

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

// What the CLI's second Ctrl-C does: a handler that ends the process mid-write removes the temp file first.
// A child writes 4 MB files in a loop until a timer's handler ends it; the temp file is there for most of
// each write (fsync included), so without remove_unfinished_file() the handler nearly always leaves one.
extern "C" void atomic_file_test_quit(int) {
  tg::remove_unfinished_file();
  ::_exit(0);
}

TEST_CASE("a process ended by a signal mid-write leaves the previous file whole and no temp file") {
  TempDir dir;
  const std::string path = dir.file("big.bin");
  const std::vector<char> data(4 << 20, 'x');
  for (int attempt = 0; attempt < 3; ++attempt) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      std::signal(SIGALRM, atomic_file_test_quit);
      itimerval timer = {};
      timer.it_value.tv_usec = 30000 + 20000 * attempt;
      ::setitimer(ITIMER_REAL, &timer, nullptr);
      for (;;) tg::write_file_atomically(path, {{data.data(), data.size()}});
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    for (const auto& entry : fs::directory_iterator(dir.path)) {
      INFO(entry.path());
      CHECK(entry.path().filename().string().find(".tmp.") == std::string::npos);
    }
    if (fs::exists(path)) CHECK(fs::file_size(path) == data.size());
  }
}
