// A residual model file written by hand (tests/fixtures/cli/small_residual.tg: batch norm, an identity block,
// a block with a `shortcut` section, a `repeat 2` of blocks using `in`, relu6) trains on MNIST from the
// binary, and its checkpoint loads strictly into PyTorch's twin, each block a Residual (self.body,
// self.shortcut), giving the same logits (fixtures of tests/gen_fixtures_cli.py); eval and predict use it.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "cli/run_checkpoint.hpp"
#include "tapegrad.hpp"
#include "test_util.hpp"
#include "torch_twin.hpp"

using namespace test_util;
using nlohmann::json;

namespace {

const std::string kResidualModelFile = TG_FIXTURE_DIR "/cli/small_residual.tg";
const std::string kResidualCheckpoint = TG_FIXTURE_DIR "/cli/small_residual.safetensors";
const std::string kResidualTorchJson = TG_FIXTURE_DIR "/cli/small_residual_torch.json";

json residual_torch_fixture() { return json::parse(read_text(kResidualTorchJson)); }

// The batch norm layers of small_residual.tg, by state-key prefix: in the stem, in bodies and in a shortcut.
const std::vector<std::string> kResidualBatchNorms = {
    "1.", "4.body.1.", "4.body.4.", "6.body.1.", "6.shortcut.1.", "7.body.1.", "9.body.1."};

}  // namespace

TEST_CASE("the committed checkpoint of small_residual.tg gives PyTorch's logits, blocks and all") {
  const json doc = residual_torch_fixture();
  tg::cli::Checkpoint ckpt = tg::cli::open_checkpoint(kResidualCheckpoint);
  CHECK(ckpt.info.model_text == read_text(kResidualModelFile));
  CHECK(ckpt.info.input == tg::Shape{1, 28, 28});
  REQUIRE(ckpt.info.classes() == 10);

  // The blocks are tg::Residual where PyTorch has its Residual: 4 (identity), 6 (shortcut), 7 and 9 (repeat).
  REQUIRE(ckpt.model.size() == 13);
  for (const std::size_t i : {4, 6, 7, 9}) {
    const auto* block = dynamic_cast<const tg::Residual*>(&ckpt.model[i]);
    INFO("layer ", i, " is ", ckpt.model[i].describe());
    REQUIRE(block != nullptr);
    CHECK(block->has_shortcut() == (i == 6));
  }

  // Exactly the tensors PyTorch loaded strictly, in the same order: 4.body.0.weight, ..., 6.shortcut.1.bias.
  std::vector<std::pair<std::string, tg::Shape>> ours;
  for (const auto& [name, t] : ckpt.model.named_state()) ours.emplace_back(name, t.shape());
  const auto theirs = torch_state(doc);
  CHECK(ours == theirs);
  CHECK(std::count_if(theirs.begin(), theirs.end(), [](const auto& e) {
          return e.first.find(".shortcut.") != std::string::npos;
        }) == 6);  // conv weight; batch norm weight, bias, running mean and var, batches tracked

  REQUIRE(json_shape(doc.at("logits").at("shape")) == tg::Shape{8, 10});
  MESSAGE("max |tapegrad - PyTorch| over 80 logits: ", check_torch_logits(ckpt, doc, kSmallMnist));
}

TEST_CASE(
    "tapegrad train on small_residual.tg writes exactly the state_dict keys and shapes PyTorch loaded") {
  TempDir dir;
  const RunResult r = run(kTapegrad + " train --model " + kResidualModelFile + " --data " + kSmallMnist +
                          " --limit 256 --epochs 1 --threads 1 --out " + dir.path.string());
  INFO(r.output);
  REQUIRE(r.code == 0);
  const std::string written = dir.file("model.safetensors");
  CHECK(file_state(written) == torch_state(residual_torch_fixture()));
  CHECK(file_state(written) == file_state(kResidualCheckpoint));

  const tg::SafetensorsFile file = tg::read_safetensors(written);
  const std::map<std::string, tg::Array> tensors(file.tensors.begin(), file.tensors.end());
  CHECK(file.metadata.at("format") == tg::cli::kFormat);
  CHECK(file.metadata.at("model_text") == read_text(kResidualModelFile));
  const tg::cli::RunInfo info = tg::cli::from_metadata(file.metadata, written);
  REQUIRE(info.history.size() == 1);
  CHECK(std::isfinite(info.history[0].train_loss));
  CHECK(info.history[0].train_loss > 0.5);  // 4 steps from random weights: not learned yet, not collapsed
  CHECK(info.history[0].train_loss < 5.0);

  // Every batch norm trained, the ones inside bodies and the shortcut too: 256 / 64 = 4 batches tracked,
  // running statistics moved from their initial 0 and 1.
  for (const std::string& bn : kResidualBatchNorms) {
    INFO(bn);
    CHECK(tensors.at(bn + "num_batches_tracked").data()[0] == 4.f);
    const tg::Array& mean = tensors.at(bn + "running_mean");
    const tg::Array& var = tensors.at(bn + "running_var");
    CHECK(std::any_of(mean.begin(), mean.end(), [](float m) { return std::abs(m) > 1e-4f; }));
    CHECK(std::any_of(var.begin(), var.end(), [](float v) { return std::abs(v - 1.f) > 1e-4f; }));
  }
}

TEST_CASE("tapegrad eval and predict use the committed checkpoint of small_residual.tg") {
  TempDir dir;
  SUBCASE("eval names the model file and the accuracy the training run measured") {
    check_eval_of_checkpoint(kTapegrad, kResidualCheckpoint, kSmallMnist,
                             "small_residual (tests/fixtures/cli/small_residual.tg)", dir);
  }

  SUBCASE("predict names the class the checkpoint's model gives each of the first 8 test images") {
    check_predict_of_checkpoint(kTapegrad, kResidualCheckpoint, kSmallMnist, dir);
  }
}
