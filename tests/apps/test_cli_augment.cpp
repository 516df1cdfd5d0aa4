// `tapegrad train --augment` (apps/cli/train.cpp): the checkpoint records the augmentation, --resume keeps
// it and refuses another, and a bad value is a usage error (exit 2) naming it.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "cli/run_checkpoint.hpp"
#include "tapegrad.hpp"
#include "test_util.hpp"

using namespace test_util;
using nlohmann::json;

TEST_CASE("tapegrad train --augment flip,crop=2 trains, says so, records it, and --resume keeps it") {
  TempDir dir;
  const std::string train = std::string(TG_TAPEGRAD_BIN) + " train --data " + kSmallMnist +
                            " --limit 256 --threads 2 --seed 3 --out " + dir.path.string();
  const RunResult r = run(train + " --epochs 1 --augment crop=2,flip");
  INFO(r.output);
  REQUIRE(r.code == 0);
  CHECK(r.output.find("augment flip,crop=2") != std::string::npos);
  const std::string checkpoint = dir.file("model.safetensors");
  CHECK(tg::cli::open_checkpoint(checkpoint).info.augment == tg::parse_augmentation("flip,crop=2"));

  const std::string resume = std::string(TG_TAPEGRAD_BIN) + " train --resume " + checkpoint + " --epochs 2";
  const RunResult other = run(resume + " --augment flip");
  INFO(other.output);
  CHECK(other.code == 2);
  CHECK(other.output.find("--augment flip differs from the checkpoint's flip,crop=2") != std::string::npos);
  CHECK(run(resume + " --augment none").code == 2);

  const RunResult same = run(resume + " --augment flip,crop=2");  // the same augmentation, in any spelling
  INFO(same.output);
  CHECK(same.code == 0);
  CHECK(same.output.find("augment flip,crop=2") != std::string::npos);
  CHECK(tg::cli::open_checkpoint(checkpoint).info.augment.text() == "flip,crop=2");
}

TEST_CASE(
    "tapegrad train without --augment does not augment; a checkpoint from before --augment reads as none") {
  TempDir dir;
  const RunResult r = run(std::string(TG_TAPEGRAD_BIN) + " train --data " + kSmallMnist +
                          " --limit 128 --epochs 1 --threads 1 --out " + dir.path.string());
  INFO(r.output);
  REQUIRE(r.code == 0);
  CHECK(r.output.find("augment none") != std::string::npos);
  const auto metadata = tg::read_safetensors(dir.file("model.safetensors")).metadata;
  json run_json = json::parse(metadata.at("run"));
  CHECK(run_json.at("augment") == "none");

  auto older = metadata;
  run_json.erase("augment");
  older["run"] = run_json.dump();
  CHECK(tg::cli::from_metadata(older, "older.safetensors").augment.none());
  auto bad = metadata;
  run_json["augment"] = "spin";
  bad["run"] = run_json.dump();
  CHECK_THROWS_WITH_AS(tg::cli::from_metadata(bad, "bad.safetensors"),
                       doctest::Contains("bad.safetensors: its training metadata is damaged"), tg::Error);
}

TEST_CASE("tapegrad train --augment with an unknown item exits 2 naming it and what is accepted") {
  TempDir dir;
  for (const char* bad : {"rotate", "flip,crop=0", "crop=100"}) {
    CAPTURE(bad);
    const RunResult r = run(std::string(TG_TAPEGRAD_BIN) + " train --data " + kSmallMnist +
                            " --epochs 1 --out " + dir.path.string() + " --augment " + bad);
    INFO(r.output);
    CHECK(r.code == 2);
    CHECK(r.output.find("--augment: ") != std::string::npos);
  }
  const RunResult r = run(std::string(TG_TAPEGRAD_BIN) + " train --data " + kSmallMnist + " --out " +
                          dir.path.string() + " --augment flip,rotate");
  CHECK(r.output.find("unknown 'rotate'; expected a comma-separated list of flip, crop=N") !=
        std::string::npos);
}
