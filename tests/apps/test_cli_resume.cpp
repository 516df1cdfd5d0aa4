// `tapegrad train --resume` and Ctrl-C (apps/cli/train.cpp): SIGINT or SIGTERM mid-epoch writes a checkpoint
// that resumes exactly where it stopped (the same batches, dropout masks and metrics as an uninterrupted run,
// bit for bit) and exits 130; a second Ctrl-C quits at once; --resume refuses every flag whose value differs
// from the checkpoint's record except those of its allow-list (apps/cli/resume_flags.hpp), a flag added to
// the train command included.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>
#include <string>

#include "cli/resume_flags.hpp"
#include "cli/train_command.hpp"
#include "tapegrad.hpp"
#include "test_util.hpp"

namespace fs = std::filesystem;
using namespace test_util;

namespace {

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
  CHECK(other_model.output.find("--model convnet differs from the checkpoint's lenet") != std::string::npos);

  const RunResult other_lr = run(resume + " --epochs 2 --lr 0.2");
  CHECK(other_lr.code == 2);
  CHECK(other_lr.output.find(
            "--resume " + dir.file("model.safetensors") +
            ": --lr 0.2 differs from the checkpoint's 0.05; only --epochs, --data, --out, "
            "--save, --threads, --precision, --profile and --detect-anomaly may change on resume") !=
        std::string::npos);

  const RunResult other_limit = run(resume + " --epochs 2 --limit 512");
  CHECK(other_limit.code == 2);
  CHECK(other_limit.output.find("--limit 512 differs from the checkpoint's 256") != std::string::npos);

  const RunResult skip = run(resume + " --epochs 2 --skip-bad-images");  // a switch
  CHECK(skip.code == 2);
  CHECK(skip.output.find("--skip-bad-images on differs from the checkpoint's off") != std::string::npos);

  // The same values, in any spelling, or none: it continues, and says what it restored.
  const RunResult more = run(resume + " --epochs 2 --limit 256 --lr 5e-2 --model lenet --dataset auto");
  INFO(more.output);
  CHECK(more.code == 0);
  CHECK(more.output.find("after epoch 1 of 2") != std::string::npos);
  CHECK(more.output.find("restored the weights, the sgd state") != std::string::npos);
  CHECK(more.output.find(
            "--epochs, --data, --out, --save, --threads, --precision, --profile and --detect-anomaly may "
            "change on resume") != std::string::npos);
  CHECK(more.output.find("epoch 2/2: train loss") != std::string::npos);
  CHECK(more.output.find("epoch 1/2: train loss") == std::string::npos);
}

TEST_CASE("every flag on the --resume allow-list may change on resume") {
  TempDir dir;
  const std::string train = std::string(TG_TAPEGRAD_BIN) + " train";
  REQUIRE(run(train + " --data " + kSmallMnist + " --limit 128 --epochs 1 --threads 1 --out " + dir.file("a"))
              .code == 0);
  // Each of kResumeMayChange, with a value other than the first run's (--data: the same folder, written
  // otherwise).
  // --precision: bf16 where the CPU has it (fp32, the first run's, elsewhere).
  REQUIRE(tg::cli::kResumeMayChange.size() == 8);
  const std::string precision = tg::bf16_supported() ? "bf16" : "fp32";
  const RunResult r =
      run(train + " --resume " + dir.file("a/model.safetensors") + " --data " + kSmallMnist +
          "/. --epochs 2 --threads 2 --out " + dir.file("b") + " --save " + dir.file("c/next.safetensors") +
          " --precision " + precision + " --profile --detect-anomaly");
  INFO(r.output);
  CHECK(r.code == 0);
  CHECK(r.output.find("epoch 2/2: train loss") != std::string::npos);
  CHECK(fs::exists(dir.file("c/next.safetensors")));
  CHECK(fs::exists(dir.file("b/metrics.csv")));
}

TEST_CASE("the --resume help and the resume message name the allow-list's flags, from one constant") {
  CLI::App app;
  const tg::cli::TrainCommand command(app);
  const std::string help = command.app()->get_option("--resume")->get_description();
  const std::string listed = tg::cli::resume_may_change_text();
  CHECK(listed == "--epochs, --data, --out, --save, --threads, --precision, --profile and --detect-anomaly");
  for (const std::string& flag : tg::cli::kResumeMayChange) CHECK(listed.find(flag) != std::string::npos);
  CHECK(help.find("only " + listed + " may change") != std::string::npos);
  for (const std::string& flag : tg::cli::kResumeMayChange) CHECK(command.app()->get_option_no_throw(flag));
}

namespace {

// Sends stdout to /dev/null for a scope (train() run in this process prints its progress).
class QuietStdout {
 public:
  QuietStdout() : saved_(::dup(STDOUT_FILENO)) {
    std::fflush(stdout);
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, STDOUT_FILENO);
    ::close(null);
  }
  ~QuietStdout() {
    std::fflush(stdout);
    ::dup2(saved_, STDOUT_FILENO);
    ::close(saved_);
  }
  QuietStdout(const QuietStdout&) = delete;
  QuietStdout& operator=(const QuietStdout&) = delete;

 private:
  int saved_;
};

// The train command of tg::cli::main, optionally with one more flag, --fake (default 1), standing for a flag
// added to tapegrad after a checkpoint was written; run() parses a command line and trains in this process.
struct TrainWithFakeFlag {
  CLI::App app;
  tg::cli::TrainCommand command{app};
  std::string fake = "1";

  explicit TrainWithFakeFlag(bool with_fake) {
    app.require_subcommand(1);
    if (with_fake) command.app()->add_option("--fake", fake, "a flag newer than the checkpoint");
  }
  // "" when training succeeded, else "usage: <message>" for a UsageError (exit code 2) or the message.
  std::string run(const std::string& args) {
    app.parse("train " + args);
    const tg::cli::TrainOptions options = command.options();
    const ScopedNumThreads threads(tg::num_threads());  // train() sets its own
    const ScopedSeed seed(1);
    const QuietStdout quiet;
    try {
      tg::cli::train(options);
      return "";
    } catch (const tg::cli::UsageError& e) {
      return std::string("usage: ") + e.what();
    } catch (const std::exception& e) {
      return e.what();
    }
  }
};

}  // namespace

TEST_CASE("--resume refuses a flag added to the train command when it differs from the checkpoint's record") {
  TempDir dir;
  const std::string first = "--data " + kSmallMnist +
                            " --limit 64 --batch-size 32 --epochs 1 --threads 1 --out " + dir.path.string();
  const std::string resume = "--resume " + dir.file("model.safetensors") + " --epochs 2";
  REQUIRE(TrainWithFakeFlag(true).run(first + " --fake 3") == "");
  CHECK(tg::cli::open_checkpoint(dir.file("model.safetensors")).info.flags.at("--fake") == "3");

  const std::string refused = TrainWithFakeFlag(true).run(resume + " --fake 4");
  CHECK(refused ==
        "usage: --resume " + dir.file("model.safetensors") +
            ": --fake 4 differs from the checkpoint's 3; only --epochs, --data, --out, --save, "
            "--threads, --precision, --profile and --detect-anomaly may change on resume (start a new run to "
            "change --fake)");
  CHECK(TrainWithFakeFlag(true).run(resume + " --fake 3.0") == "");  // the same value
  CHECK(tg::cli::open_checkpoint(dir.file("model.safetensors")).info.epoch == 2);
}

TEST_CASE("--resume compares a flag the checkpoint does not record (it predates the flag) with its default") {
  TempDir dir;
  REQUIRE(TrainWithFakeFlag(false).run("--data " + kSmallMnist + " --limit 64 --batch-size 32 --epochs 1 " +
                                       "--threads 1 --out " + dir.path.string()) == "");
  CHECK(tg::cli::open_checkpoint(dir.file("model.safetensors")).info.flags.count("--fake") == 0);
  const std::string resume = "--resume " + dir.file("model.safetensors") + " --epochs 2";
  const std::string refused = TrainWithFakeFlag(true).run(resume + " --fake 2");
  CHECK(
      refused.find("usage: --resume " + dir.file("model.safetensors") +
                   ": --fake 2 differs from the checkpoint's run, which predates --fake and so ran with its "
                   "default 1") == 0);
  CHECK(TrainWithFakeFlag(true).run(resume + " --fake 1") == "");
}

TEST_CASE("--resume of a checkpoint written before flags were recorded checks the flags its run describes") {
  const std::string checkpoint = TG_FIXTURE_DIR "/cli/small.safetensors";  // no "flags" in its run
  REQUIRE(tg::cli::open_checkpoint(checkpoint).info.flags.empty());
  TempDir dir;
  const std::string resume = std::string(TG_TAPEGRAD_BIN) + " train --resume " + checkpoint +
                             " --epochs 2 --threads 1 --data " + kSmallMnist + " --out " + dir.path.string();
  const RunResult lr = run(resume + " --lr 0.3");
  CHECK(lr.code == 2);
  CHECK(lr.output.find("--lr 0.3 differs from the checkpoint's 0.05") != std::string::npos);
  const RunResult batch = run(resume + " --batch-size 32");
  CHECK(batch.code == 2);
  CHECK(batch.output.find("--batch-size 32 differs from the checkpoint's 64") != std::string::npos);

  const RunResult same = run(resume + " --lr 0.05 --batch-size 64 --limit 256 --seed 1 --momentum 0.9");
  INFO(same.output);
  REQUIRE(same.code == 0);
  // The continued run's checkpoint records them.
  const tg::cli::RunInfo info = tg::cli::open_checkpoint(dir.file("model.safetensors")).info;
  CHECK(info.flags.at("--lr") == "0.05");
  CHECK(info.flags.at("--limit") == "256");
  CHECK(info.flags.at("--image-size") == "28x28");
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
