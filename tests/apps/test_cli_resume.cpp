// `tapegrad train --resume` and Ctrl-C (apps/cli/train.cpp): SIGINT or SIGTERM mid-epoch writes a checkpoint
// that resumes exactly where it stopped (the same batches, dropout masks and metrics as an uninterrupted run,
// bit for bit) and exits 130; a second Ctrl-C quits at once; --resume refuses what cannot continue the run.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>
#include <string>

#include "tapegrad.hpp"
#include "test_util.hpp"

namespace fs = std::filesystem;
using namespace test_util;

namespace {

const std::string kSmallMnist = TG_FIXTURE_DIR "/mnist_small";

// lenet with dropout: the resumed run must also draw the same dropout masks (the generator's state).
const char* kDropoutNet = R"(# lenet with dropout
conv2d 6 5 padding=2
relu
maxpool2d 2
conv2d 16 5
relu
maxpool2d 2
flatten
linear 120
relu
dropout p=0.25
linear classes
)";

struct Spawned {
  int code = -1;   // exit code, or -1 when killed by a signal
  int signal = 0;  // the signal that ended it, or 0
  std::string output;
};

// Runs `command` (stdout and stderr into one pipe) and calls on_line(pid, line) for each line it prints.
Spawned spawn(const std::string& command, const std::function<void(pid_t, const std::string&)>& on_line) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    ::dup2(fds[1], STDERR_FILENO);
    ::close(fds[0]);
    ::close(fds[1]);
    ::execl("/bin/sh", "sh", "-c", ("exec " + command).c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(fds[1]);
  Spawned result;
  std::string pending;
  char buffer[4096];
  for (ssize_t n; (n = ::read(fds[0], buffer, sizeof buffer)) > 0;) {
    pending.append(buffer, static_cast<std::size_t>(n));
    for (std::size_t end; (end = pending.find('\n')) != std::string::npos;) {
      const std::string line = pending.substr(0, end);
      result.output += line + "\n";
      pending.erase(0, end + 1);
      on_line(pid, line);
    }
  }
  result.output += pending;
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFEXITED(status)) result.code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  return result;
}

// "epoch 1/2: train loss 0.1234 acc 95.00% | test loss 0.2345 acc 93.10%" without the timing after it.
std::string epoch_line(const std::string& output, int epoch) {
  const std::regex pattern("epoch " + std::to_string(epoch) +
                           "/[0-9]+: train loss [0-9.]+ acc [0-9.]+% \\| test loss [0-9.]+ acc [0-9.]+%");
  std::smatch match;
  return std::regex_search(output, match, pattern) ? match.str() : "";
}

// Runs `command` and sends it `sig` at its first progress line of epoch 1 (mid-epoch, as the callers size
// their epochs); requires that the signal was sent.
Spawned interrupted_run(const std::string& command, int sig) {
  bool sent = false;
  Spawned stopped = spawn(command, [&](pid_t pid, const std::string& line) {
    if (!sent && line.find("epoch 1/2 [") != std::string::npos) {
      ::kill(pid, sig);
      sent = true;
    }
  });
  INFO(stopped.output);
  REQUIRE(sent);
  return stopped;
}

}  // namespace

TEST_CASE(
    "Ctrl-C mid-epoch writes a checkpoint, exits 130, and resuming it ends bit for bit as an uninterrupted "
    "run") {
  for (const int sig : {SIGINT, SIGTERM}) {
    INFO("signal ", sig);
    TempDir dir;
    std::ofstream(dir.file("net.tg")) << kDropoutNet;
    // 1,000 steps per epoch, so that the signal arrives mid-epoch.
    const std::string common = std::string(TG_TAPEGRAD_BIN) + " train --model " + dir.file("net.tg") +
                               " --data " + kSmallMnist + " --batch-size 2 --epochs 2 --threads 1 --seed 3";
    const RunResult full = run(common + " --out " + dir.file("full"));
    INFO(full.output);
    REQUIRE(full.code == 0);

    const Spawned stopped = interrupted_run(common + " --out " + dir.file("part"), sig);
    INFO(stopped.output);
    CHECK(stopped.code == 130);
    CHECK(stopped.output.find("finishing this step and writing a checkpoint") != std::string::npos);
    std::smatch where;
    REQUIRE(
        std::regex_search(stopped.output, where, std::regex("interrupted at epoch 1/2, step ([0-9]+)/1000")));
    const std::string step = where[1];
    CHECK(stopped.output.find("tapegrad train --resume " + dir.file("part/model.safetensors")) !=
          std::string::npos);

    const RunResult resumed =
        run(std::string(TG_TAPEGRAD_BIN) + " train --resume " + dir.file("part/model.safetensors"));
    INFO(resumed.output);
    REQUIRE(resumed.code == 0);
    CHECK(resumed.output.find("step " + step + " of epoch 1") != std::string::npos);
    // The interrupted epoch's metrics (its sums were saved) and the next epoch's equal the uninterrupted
    // run's.
    CHECK(!epoch_line(full.output, 1).empty());
    CHECK(epoch_line(resumed.output, 1) == epoch_line(full.output, 1));
    CHECK(epoch_line(resumed.output, 2) == epoch_line(full.output, 2));
    CHECK(same_tensors(dir.file("full/model.safetensors"), dir.file("part/model.safetensors")));
    const std::string csv = read_text(dir.file("part/metrics.csv"));
    CHECK(std::count(csv.begin(), csv.end(), '\n') == 3);  // the header and both epochs
  }
}

// Two different signals, so that the kernel cannot merge them into one pending signal (two SIGINTs sent at
// once may arrive as one).
TEST_CASE("a second Ctrl-C quits at once and leaves no partial checkpoint") {
  TempDir dir;
  bool sent = false;
  const Spawned killed = spawn(std::string(TG_TAPEGRAD_BIN) + " train --data " + kSmallMnist +
                                   " --batch-size 2 --epochs 5 --threads 1 --out " + dir.path.string(),
                               [&](pid_t pid, const std::string& line) {
                                 if (!sent && line.find("epoch 1/5 [") != std::string::npos) {
                                   ::kill(pid, SIGINT);
                                   ::kill(pid, SIGTERM);
                                   sent = true;
                                 }
                               });
  INFO(killed.output);
  REQUIRE(sent);
  CHECK((killed.signal == SIGINT || killed.signal == SIGTERM));
  CHECK(killed.output.find("interrupted at epoch") == std::string::npos);
  for (const auto& entry : fs::directory_iterator(dir.path)) {
    INFO(entry.path());
    CHECK(entry.path().filename().string().find(".tmp") == std::string::npos);
  }
}

TEST_CASE("--resume refuses what cannot continue the run (exit 2) and says what it restores") {
  TempDir dir;
  const std::string train = std::string(TG_TAPEGRAD_BIN) + " train --data " + kSmallMnist + " --threads 1";
  REQUIRE(run(train + " --limit 256 --epochs 1 --out " + dir.path.string()).code == 0);
  const std::string resume = train + " --resume " + dir.file("model.safetensors");

  const RunResult done = run(resume);
  CHECK(done.code == 2);
  CHECK(done.output.find("already at epoch 1 of 1") != std::string::npos);
  CHECK(done.output.find("--epochs N") != std::string::npos);

  const RunResult other_model = run(resume + " --epochs 2 --model convnet");
  CHECK(other_model.code == 2);
  CHECK(other_model.output.find("--model lenet, not convnet") != std::string::npos);

  const RunResult other_lr = run(resume + " --epochs 2 --lr 0.2");
  CHECK(other_lr.code == 2);
  CHECK(other_lr.output.find("--lr 0.05, not 0.2") != std::string::npos);

  const RunResult other_limit = run(resume + " --epochs 2 --limit 512");
  CHECK(other_limit.code == 2);
  CHECK(other_limit.output.find("--limit") != std::string::npos);

  // The same values, or none: it continues, and says what it restored.
  const RunResult more = run(resume + " --epochs 2 --limit 256 --lr 0.05");
  INFO(more.output);
  CHECK(more.code == 0);
  CHECK(more.output.find("after epoch 1 of 2") != std::string::npos);
  CHECK(more.output.find("restored the weights, the sgd state") != std::string::npos);
  CHECK(more.output.find("epoch 2/2: train loss") != std::string::npos);
  CHECK(more.output.find("epoch 1/2: train loss") == std::string::npos);
}

TEST_CASE("an adamw run stopped by Ctrl-C mid-epoch resumes Adam's moments and step counts bit for bit") {
  TempDir dir;
  // 500 steps per epoch, so that the signal arrives mid-epoch (of either epoch: the result must not depend
  // on which).
  const std::string common = std::string(TG_TAPEGRAD_BIN) + " train --optimizer adamw --data " + kSmallMnist +
                             " --limit 1000 --batch-size 2 --epochs 2 --threads 1 --seed 5";
  const RunResult full = run(common + " --out " + dir.file("full"));
  INFO(full.output);
  REQUIRE(full.code == 0);

  const Spawned stopped = interrupted_run(common + " --out " + dir.file("part"), SIGINT);
  INFO(stopped.output);
  REQUIRE(stopped.code == 130);
  CHECK(std::regex_search(stopped.output, std::regex("interrupted at epoch [12]/2, step [0-9]+/500")));

  const RunResult resumed =
      run(std::string(TG_TAPEGRAD_BIN) + " train --resume " + dir.file("part/model.safetensors"));
  INFO(resumed.output);
  REQUIRE(resumed.code == 0);
  CHECK(resumed.output.find("the adamw state (lr 0.001, betas 0.9, 0.999, eps 1e-08, decoupled weight decay "
                            "0.01)") != std::string::npos);
  CHECK(epoch_line(resumed.output, 2) == epoch_line(full.output, 2));
  // The weights and the optimizer's state (optimizer.exp_avg.*, exp_avg_sq.*, step.*).
  CHECK(same_tensors(dir.file("full/model.safetensors"), dir.file("part/model.safetensors")));
}
