// `tapegrad train --optimizer adam|adamw` (apps/cli/train.cpp): PyTorch's defaults when --lr and
// --weight-decay are not given, the optimizer and its options in the checkpoint's run JSON, its state under
// optimizer.*, --resume continuing bit for bit, and the flags of another optimizer refused with exit 2.
// (Ctrl-C mid-epoch with adamw: tests/apps/test_cli_resume.cpp.)
#include <doctest/doctest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>

#include "cli/run_checkpoint.hpp"
#include "tapegrad.hpp"
#include "test_util.hpp"

using namespace test_util;
using nlohmann::json;

namespace {

const std::string kTrain = std::string(TG_TAPEGRAD_BIN) + " train --data " + kSmallMnist + " --threads 1";

// The train loss printed at the end of epoch `epoch`, or -1.
double train_loss(const std::string& output, int epoch) {
  const std::regex pattern("epoch " + std::to_string(epoch) + "/[0-9]+: train loss ([0-9.]+)");
  std::smatch match;
  return std::regex_search(output, match, pattern) ? std::stod(match[1]) : -1.0;
}

json run_json(const std::string& checkpoint) {
  return json::parse(tg::read_safetensors(checkpoint).metadata.at("run"));
}

bool has_tensor(const std::string& checkpoint, const std::string& name) {
  for (const auto& [key, value] : tg::read_safetensors(checkpoint).tensors)
    if (key == name) return true;
  return false;
}

}  // namespace

TEST_CASE("tapegrad train --optimizer adam trains with PyTorch's defaults and saves Adam's state") {
  TempDir dir;
  const RunResult r =
      run(kTrain + " --optimizer adam --limit 512 --batch-size 16 --epochs 2 --out " + dir.path.string());
  INFO(r.output);
  REQUIRE(r.code == 0);
  CHECK(r.output.find(
            "adam lr 0.001 (cosine, warm-up 0.3 epochs), betas 0.9, 0.999, eps 1e-08, weight decay 0,") !=
        std::string::npos);
  const double first = train_loss(r.output, 1), second = train_loss(r.output, 2);
  CHECK(first > 0);
  CHECK(first < 2.2);  // below ln(10) = 2.30, the loss of a uniform guess
  CHECK(second < first);

  const std::string checkpoint = dir.file("model.safetensors");
  const json optimizer = run_json(checkpoint).at("optimizer");
  INFO(optimizer.dump());
  CHECK(optimizer.at("kind") == "adam");
  CHECK(optimizer.at("lr").get<float>() == 1e-3f);
  CHECK(optimizer.at("beta1").get<float>() == 0.9f);
  CHECK(optimizer.at("beta2").get<float>() == 0.999f);
  CHECK(optimizer.at("eps").get<float>() == 1e-8f);
  CHECK(optimizer.at("weight_decay").get<float>() == 0.f);
  CHECK_FALSE(optimizer.contains("momentum"));
  CHECK(has_tensor(checkpoint, "optimizer.exp_avg.0"));
  CHECK(has_tensor(checkpoint, "optimizer.exp_avg_sq.0"));
  CHECK(has_tensor(checkpoint, "optimizer.step.0"));
  CHECK_FALSE(has_tensor(checkpoint, "optimizer.momentum_buffer.0"));
}

TEST_CASE("tapegrad train refuses another optimizer's flags with exit 2 and says why") {
  TempDir dir;
  const std::string out = " --out " + dir.path.string();
  for (const char* optimizer : {"adam", "adamw"}) {
    const RunResult r = run(kTrain + " --optimizer " + optimizer + " --momentum 0.9" + out);
    INFO(r.output);
    CHECK(r.code == 2);
    CHECK(r.output.find("--momentum is for sgd, and this run's optimizer is " + std::string(optimizer)) !=
          std::string::npos);
  }
  for (const char* flag : {"--betas 0.9,0.99", "--eps 1e-6"}) {
    const RunResult r = run(kTrain + " " + flag + out);
    INFO(r.output);
    CHECK(r.code == 2);
    CHECK(r.output.find("is for adam and adamw, and this run's optimizer is sgd") != std::string::npos);
  }
  for (const char* bad : {"--optimizer rmsprop", "--betas 0.9", "--betas 1,0.9", "--eps -1"}) {
    const RunResult r = run(kTrain + " " + bad + out);
    INFO(bad, ": ", r.output);
    CHECK(r.code == 2);
  }
  CHECK_FALSE(std::filesystem::exists(dir.file("model.safetensors")));
}

TEST_CASE("an adamw run resumed after its first epoch ends bit for bit as the uninterrupted run") {
  TempDir dir;
  // The step schedule depends on the epoch only, not on --epochs, so the first run's epoch is the full one's.
  const std::string common = kTrain +
                             " --optimizer adamw --betas 0.85,0.995 --eps 1e-7 --weight-decay 0.05 --lr 2e-3 "
                             "--schedule step --limit 256 --batch-size 16";
  const RunResult full = run(common + " --epochs 2 --out " + dir.file("full"));
  INFO(full.output);
  REQUIRE(full.code == 0);
  CHECK(full.output.find("adamw lr 0.002 (step, warm-up 0 epochs), betas 0.85, 0.995, eps 1e-07, decoupled "
                         "weight decay 0.05,") != std::string::npos);
  const RunResult first = run(common + " --epochs 1 --out " + dir.file("part"));
  INFO(first.output);
  REQUIRE(first.code == 0);
  const std::string part = dir.file("part/model.safetensors");
  const json optimizer = run_json(part).at("optimizer");
  CHECK(optimizer.at("kind") == "adamw");
  CHECK(optimizer.at("beta1").get<float>() == 0.85f);
  CHECK(optimizer.at("beta2").get<float>() == 0.995f);
  CHECK(optimizer.at("eps").get<float>() == 1e-7f);
  CHECK(optimizer.at("weight_decay").get<float>() == 0.05f);
  // 16 steps of 16 images: every parameter's step count.
  for (const auto& [name, value] : tg::read_safetensors(part).tensors) {
    if (name.rfind("optimizer.step.", 0) == 0) CHECK(value() == 16.f);
  }

  const std::string resume = std::string(TG_TAPEGRAD_BIN) + " train --threads 1 --resume " + part;
  const RunResult other = run(resume + " --epochs 2 --optimizer sgd");
  CHECK(other.code == 2);
  CHECK(other.output.find("--optimizer sgd differs from the checkpoint's adamw") != std::string::npos);
  const RunResult momentum = run(resume + " --epochs 2 --momentum 0.9");
  CHECK(momentum.code == 2);
  CHECK(momentum.output.find("--momentum is for sgd, and this run's optimizer is adamw") !=
        std::string::npos);
  const RunResult betas = run(resume + " --epochs 2 --betas 0.9,0.999");
  CHECK(betas.code == 2);
  CHECK(betas.output.find("--betas 0.9,0.999 differs from the checkpoint's 0.85,0.995") != std::string::npos);

  const RunResult resumed = run(resume + " --epochs 2 --optimizer adamw --lr 2e-3");
  INFO(resumed.output);
  REQUIRE(resumed.code == 0);
  CHECK(resumed.output.find("restored the weights, the adamw state (lr 0.002, betas 0.85, 0.995, eps 1e-07, "
                            "decoupled weight decay 0.05)") != std::string::npos);
  CHECK(same_tensors(dir.file("full/model.safetensors"), part));
}

TEST_CASE("the run JSON keeps adam's and adamw's options, and names an unknown optimizer as damage") {
  tg::cli::RunInfo info;
  info.model_name = "lenet";
  info.model_source = "lenet.tg";
  info.model_text = "flatten\nlinear classes\n";
  info.input = {1, 28, 28};
  info.class_names = {"a", "b"};
  info.mean = {0.f};
  info.std = {1.f};
  info.batch_size = 8;
  info.epochs = 1;
  info.optimizer = "adamw";
  info.lr = 3e-4f;
  info.beta1 = 0.8f;
  info.beta2 = 0.95f;
  info.eps = 1e-6f;
  info.weight_decay = 0.1f;
  const auto metadata = tg::cli::to_metadata(info);
  const tg::cli::RunInfo back = tg::cli::from_metadata(metadata, "a.safetensors");
  CHECK(back.optimizer == "adamw");
  CHECK(back.lr == info.lr);
  CHECK(back.beta1 == info.beta1);
  CHECK(back.beta2 == info.beta2);
  CHECK(back.eps == info.eps);
  CHECK(back.weight_decay == info.weight_decay);

  for (const auto& [pointer, value] :
       std::map<std::string, json>{{"/optimizer/kind", "rmsprop"}, {"/optimizer/beta1", "0.9"}}) {
    json run = json::parse(metadata.at("run"));
    run[json::json_pointer(pointer)] = value;
    auto bad = metadata;
    bad["run"] = run.dump();
    INFO(pointer);
    CHECK_THROWS_WITH_AS(tg::cli::from_metadata(bad, "bad.safetensors"),
                         doctest::Contains("bad.safetensors: its training metadata is damaged"), tg::Error);
  }
  json run = json::parse(metadata.at("run"));
  run["optimizer"].erase("eps");
  auto bad = metadata;
  bad["run"] = run.dump();
  CHECK_THROWS_WITH_AS(tg::cli::from_metadata(bad, "bad.safetensors"), doctest::Contains("eps"), tg::Error);
}
