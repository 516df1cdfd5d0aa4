// `tapegrad export CHECKPOINT OUT.onnx [--opset 13|17] [--fold-bn]` (apps/cli/export.cpp): the file it writes
// (read back with libonnx's onnx::ModelProto), the line it prints, onnxruntime's outputs on the file against
// tapegrad's eval forward of the checkpoint (|diff| <= 1e-5 + 1e-5 |tapegrad|), and its errors.
#include <onnx/onnx_pb.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "cli/run_checkpoint.hpp"
#include "onnx_runtime.hpp"
#include "test_util.hpp"

namespace cli_export_test {

using test_util::RunResult;
using test_util::TempDir;

const std::string kFixtures = TG_FIXTURE_DIR "/cli/";

std::string tapegrad(const std::string& args) { return std::string(TG_TAPEGRAD_BIN) + " " + args; }

TEST_CASE("tapegrad export writes a checkpoint as ONNX that onnxruntime runs as tapegrad eval does") {
  TempDir dir;
  std::vector<std::pair<std::string, tg::Array>> cases;
  std::vector<tg::Array> expected;
  tg::Generator gen(21);
  for (const std::string name : {"small", "small_residual"}) {
    const std::string checkpoint = kFixtures + name + ".safetensors";
    tg::cli::Checkpoint ckpt = tg::cli::open_checkpoint(checkpoint);
    const tg::Array x = tg::randn({3, 1, 28, 28}, gen);
    ckpt.model.eval();
    tg::NoGradGuard no_grad;
    const tg::Array y = ckpt.model(tg::Tensor(x)).value();
    for (const std::string flags : {"", " --opset 17 --fold-bn"}) {
      const std::string out = dir.file(name + (flags.empty() ? "" : "_17") + ".onnx");
      const RunResult r = test_util::run(tapegrad("export " + checkpoint + " " + out + flags));
      INFO(r.output);
      REQUIRE(r.code == 0);
      const int opset = flags.empty() ? 13 : 17;
      onnx::ModelProto m;
      REQUIRE(m.ParseFromString(test_util::read_text(out)));
      CHECK(m.opset_import(0).version() == opset);
      // one line: what it wrote, the opset, the node count, the input, the classes, the size
      const std::string line =
          "wrote " + out + ": ONNX opset " + std::to_string(opset) + ", " +
          std::to_string(m.graph().node_size()) + " nodes" + (flags.empty() ? "" : " (batch norms folded)") +
          ", input Nx1x28x28, 10 classes, " + tg::with_commas(std::filesystem::file_size(out)) +
          " bytes (from " + checkpoint + ")\n";
      CHECK(r.output == line);
      int batch_norms = 0;
      for (const onnx::NodeProto& n : m.graph().node()) batch_norms += n.op_type() == "BatchNormalization";
      CHECK(batch_norms == (flags.empty() && name == std::string("small_residual") ? 7 : 0));
      std::map<std::string, std::string> meta;
      for (const auto& e : m.metadata_props()) meta[e.key()] = e.value();
      CHECK(meta.at("tapegrad.model") == ckpt.info.model_text);
      CHECK(meta.at("tapegrad.source") == ckpt.info.model_source);
      CHECK(meta.at("tapegrad.input") == "1x28x28");
      CHECK(nlohmann::json::parse(meta.at("tapegrad.classes")) == nlohmann::json(ckpt.info.class_names));
      CHECK(nlohmann::json::parse(meta.at("tapegrad.mean")).get<std::vector<float>>() == ckpt.info.mean);
      CHECK(nlohmann::json::parse(meta.at("tapegrad.std")).get<std::vector<float>>() == ckpt.info.std);
      cases.emplace_back(out, x);
      expected.push_back(y);
    }
  }
  const std::vector<tg::Array> got = test_util::run_onnxruntime_all(cases);
  for (std::size_t i = 0; i < got.size(); ++i) {
    const test_util::Closeness c = test_util::closeness(got[i], expected[i]);
    std::printf("onnxruntime vs tapegrad: %s: max |diff| %.3g\n", cases[i].first.c_str(), c.max_abs_diff);
    CHECK_MESSAGE(c.ok(), cases[i].first, ": max |diff| ", c.max_abs_diff, ", ", c.worst_ratio,
                  " times the tolerance");
  }
}

TEST_CASE("tapegrad export: a bad checkpoint, opset or output path is an error, and nothing is written") {
  TempDir dir;
  const std::string ckpt = kFixtures + "small.safetensors";
  const std::string out = dir.file("m.onnx");

  RunResult r = test_util::run(tapegrad("export " + dir.file("none.safetensors") + " " + out));
  CHECK(r.code == 1);
  CHECK(r.output.find("tapegrad export: error: " + dir.file("none.safetensors") + ": file not found") !=
        std::string::npos);
  r = test_util::run(tapegrad("export " + kFixtures + "small.tg " + out));  // not a checkpoint
  CHECK(r.code == 1);
  CHECK(r.output.find("tapegrad export: error: ") != std::string::npos);
  r = test_util::run(tapegrad("export " + ckpt + " " + out + " --opset 12"));
  CHECK(r.code == 2);
  CHECK(r.output.find("--opset: 12 not in {13,17}") != std::string::npos);
  r = test_util::run(tapegrad("export " + ckpt + " " + dir.file("no/dir/m.onnx")));
  CHECK(r.code == 1);
  CHECK(r.output.find("cannot write " + dir.file("no/dir/m.onnx")) != std::string::npos);
  CHECK(std::filesystem::is_empty(dir.path));

  // a file already there stays whole when an export fails
  test_util::write_text(out, "before");
  r = test_util::run(tapegrad("export " + kFixtures + "small.tg " + out));
  CHECK(r.code == 1);
  CHECK(test_util::read_text(out) == "before");
  CHECK(std::distance(std::filesystem::directory_iterator(dir.path), {}) == 1);
}

}  // namespace cli_export_test
