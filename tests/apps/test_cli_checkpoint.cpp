// Checkpoints written by `tapegrad train` (apps/cli/run_checkpoint.hpp): PyTorch loads them strictly into the
// twin torch.nn.Sequential and computes the same logits (fixtures of tests/gen_fixtures_cli.py), eval,
// predict and --resume use the committed one, and every kind of bad checkpoint ends in exit code 1 with a
// message naming the file.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
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

const std::string kModelFile = TG_FIXTURE_DIR "/cli/small.tg";
const std::string kCheckpoint = TG_FIXTURE_DIR "/cli/small.safetensors";
const std::string kTorchJson = TG_FIXTURE_DIR "/cli/small_torch.json";

json torch_fixture() { return json::parse(read_text(kTorchJson)); }

}  // namespace

TEST_CASE("the committed checkpoint of small.tg, opened by open_checkpoint, gives PyTorch's logits") {
  const json doc = torch_fixture();
  tg::cli::Checkpoint ckpt = tg::cli::open_checkpoint(kCheckpoint);
  CHECK(ckpt.info.model_text == read_text(kModelFile));
  CHECK(ckpt.info.input == tg::Shape{1, 28, 28});
  REQUIRE(ckpt.info.classes() == 10);

  // The model open_checkpoint built holds exactly the tensors PyTorch loaded strictly, in the same order.
  std::vector<std::pair<std::string, tg::Shape>> ours;
  for (const auto& [name, t] : ckpt.model.named_state()) ours.emplace_back(name, t.shape());
  CHECK(ours == torch_state(doc));

  REQUIRE(json_shape(doc.at("logits").at("shape")) == tg::Shape{8, 10});
  MESSAGE("max |tapegrad - PyTorch| over 80 logits: ", check_torch_logits(ckpt, doc, kSmallMnist));
}

TEST_CASE("tapegrad train on small.tg now writes exactly the state_dict keys and shapes PyTorch loaded") {
  TempDir dir;
  const RunResult r = run(kTapegrad + " train --model " + kModelFile + " --data " + kSmallMnist +
                          " --limit 256 --epochs 1 --threads 1 --out " + dir.path.string());
  INFO(r.output);
  REQUIRE(r.code == 0);
  const std::string written = dir.file("model.safetensors");
  CHECK(file_state(written) == torch_state(torch_fixture()));
  CHECK(file_state(written) == file_state(kCheckpoint));
  // and it is self-describing in the same format as the committed one
  const tg::SafetensorsFile file = tg::read_safetensors(written);
  CHECK(file.metadata.at("format") == tg::cli::kFormat);
  CHECK(file.metadata.at("model_text") == read_text(kModelFile));
}

TEST_CASE("tapegrad eval, predict and train --resume use the committed checkpoint of small.tg") {
  TempDir dir;
  const json doc = torch_fixture();
  const tg::cli::RunInfo info =
      tg::cli::from_metadata(tg::read_safetensors(kCheckpoint).metadata, kCheckpoint);
  REQUIRE_FALSE(info.history.empty());

  SUBCASE("eval names the model file and the accuracy the training run measured") {
    check_eval_of_checkpoint(kTapegrad, kCheckpoint, kSmallMnist, "small (tests/fixtures/cli/small.tg)", dir);
  }

  SUBCASE("predict names the class the checkpoint's model gives each of the first 8 test images") {
    check_predict_of_checkpoint(kTapegrad, kCheckpoint, kSmallMnist, dir);
  }

  SUBCASE("train --resume continues it for one more epoch") {
    const RunResult r = run(kTapegrad + " train --resume " + kCheckpoint + " --epochs 2 --data " +
                            kSmallMnist + " --threads 1 --out " + dir.path.string());
    INFO(r.output);
    REQUIRE(r.code == 0);
    CHECK(r.output.find("resuming") != std::string::npos);
    CHECK(r.output.find("epoch 2/2: train loss") != std::string::npos);
    const tg::cli::Checkpoint resumed = tg::cli::open_checkpoint(dir.file("model.safetensors"));
    CHECK(resumed.info.epoch == 2);
    CHECK(resumed.info.model_text == info.model_text);
  }
}

TEST_CASE("eval, predict and train --resume exit 1 naming the file for every kind of bad checkpoint") {
  TempDir dir;
  const tg::SafetensorsFile good = tg::read_safetensors(kCheckpoint);
  std::vector<std::pair<std::string, const tg::Array*>> tensors;
  for (const auto& [name, array] : good.tensors) tensors.emplace_back(name, &array);
  const auto with_metadata = [&](const std::string& file, const std::string& key, const std::string& value) {
    std::map<std::string, std::string> metadata = good.metadata;
    metadata[key] = value;
    tg::write_safetensors(dir.file(file), tensors, metadata);
    return dir.file(file);
  };
  const std::string bytes = read_text(kCheckpoint);
  const auto with_bytes = [&](const std::string& file, const std::string& content) {
    std::ofstream(dir.file(file), std::ios::binary) << content;
    return dir.file(file);
  };
  std::string model_text = read_text(kModelFile);
  const std::size_t at = model_text.find("linear 16");
  REQUIRE(at != std::string::npos);
  model_text.replace(at, 9, "linear 32");  // builds, but its 7.weight is [32, 288]
  const std::string run_json = good.metadata.at("run");

  tg::Sequential lenet = cpp_model("lenet");
  tg::save(lenet, dir.file("older.safetensors"), {{}, {{"model", "lenet"}}});  // as tapegrad 0.x wrote them
  tg::save(lenet, dir.file("plain.safetensors"));                              // tg::save, no metadata

  const std::vector<std::pair<std::string, std::string>> cases = {
      {dir.file("older.safetensors"), "was written by an older tapegrad"},
      {dir.file("plain.safetensors"), "not a checkpoint written by `tapegrad train`"},
      {with_metadata("other_text.safetensors", "model_text", model_text),
       "its tensors do not match the model text it holds"},
      {with_metadata("damaged_run.safetensors", "run", run_json.substr(0, run_json.size() / 2)),
       "its training metadata is damaged"},
      {with_bytes("truncated.safetensors", bytes.substr(0, bytes.size() / 2)), "are outside the"},
      {with_bytes("empty.safetensors", ""), "not a safetensors file"},
  };
  const std::string image = dir.file("digit.png");
  tg::write_png(image, std::vector<std::uint8_t>(784, 0), 28, 28);
  const std::vector<std::pair<std::string, std::string>> commands = {
      {"eval", " --data " + kSmallMnist + " --out " + dir.file("out")},
      {"predict", " " + image},
      {"train --resume", " --epochs 2 --data " + kSmallMnist + " --threads 1 --out " + dir.file("out")},
  };
  for (const auto& [path, message] : cases) {
    for (const auto& [command, rest] : commands) {
      const RunResult r = run(kTapegrad + " " + command + " " + path + rest);
      INFO(command, " ", path, ": ", r.output);
      CHECK(r.code == 1);  // not a crash (-1 here, or 128 + a signal) and not a usage error (2)
      CHECK(r.output.find("tapegrad " + command.substr(0, command.find(' ')) + ": error: " + path + ": ") !=
            std::string::npos);
      CHECK(r.output.find(message) != std::string::npos);
    }
  }
  CHECK_FALSE(std::filesystem::exists(dir.file("out/model.safetensors")));
}

// Found by reasoning about what fuzz_checkpoint runs into (tests/fuzz): json::get<int>() of 1e20 or
// get<std::size_t>() of -1.5 is an undefined float-to-integer conversion, and get<float>() of 1e39 gives inf,
// which to_metadata writes back as null. from_metadata now says which value is wrong instead.
TEST_CASE("from_metadata rejects numbers that are not whole, out of range or not finite, naming the key") {
  const std::map<std::string, std::string> good = tg::read_safetensors(kCheckpoint).metadata;
  const tg::cli::RunInfo info = tg::cli::from_metadata(good, kCheckpoint);
  const tg::cli::RunInfo again = tg::cli::from_metadata(tg::cli::to_metadata(info), "again.safetensors");
  CHECK(again.input == info.input);
  CHECK(again.lr == info.lr);
  CHECK(again.seed == info.seed);
  CHECK(again.history.size() == info.history.size());

  const std::vector<std::pair<std::string, json>> cases = {
      {"/epoch", 1e20},
      {"/epochs", 3000000000ull},
      {"/world_size", -3000000000ll},
      {"/batch_size", -1.5},
      {"/batch_size", -1},
      {"/step_in_epoch", 2.5},
      {"/seed", -1},
      {"/input", json::array({1, 28.5, 28})},
      {"/input", json::array({1, 1e30, 28})},
      {"/input", "1x28x28"},
      {"/optimizer/lr", 1e39},
      {"/optimizer/momentum", "0.9"},
      {"/schedule/warmup_epochs", "0.3"},
      {"/normalization/mean", json::array({1e39})},
      {"/partial/seen", 1e19},
      {"/history/0/lr_end", -1e39},
      {"/history/0/test_accuracy", nullptr},
  };
  for (const auto& [pointer, value] : cases) {
    json run = json::parse(good.at("run"));
    run[json::json_pointer(pointer)] = value;
    std::map<std::string, std::string> metadata = good;
    metadata["run"] = run.dump();
    INFO(pointer, " = ", value.dump());
    const std::string key = pointer.substr(pointer.rfind('/') + 1);
    std::string message;
    try {
      tg::cli::from_metadata(metadata, "bad.safetensors");
    } catch (const tg::Error& e) {
      message = e.what();
    }
    INFO(message);
    CHECK(message.find("bad.safetensors: its training metadata is damaged ('" + key + "'") !=
          std::string::npos);
  }
}
