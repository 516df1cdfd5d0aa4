// What the checkpoint tests (tests/apps/test_cli_checkpoint.cpp, test_cli_checkpoint_residual.cpp) compare
// with the PyTorch twin of a model file: the fixtures NAME_torch.json of tests/gen_fixtures_cli.py
// (state_dict keys and shapes PyTorch loaded with strict=True, its eval logits on the first test images of
// mnist_small).
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "cli/run_checkpoint.hpp"
#include "tapegrad.hpp"
#include "test_util.hpp"

namespace test_util {

// The tapegrad binary the command-line suites run.
inline const std::string kTapegrad = TG_TAPEGRAD_BIN;

// Through std::vector: GCC 12 warns (-Warray-bounds, falsely) inside json::get<tg::Shape>().
inline tg::Shape json_shape(const nlohmann::json& j) {
  const auto dims = j.get<std::vector<std::size_t>>();
  return tg::Shape(dims.begin(), dims.end());
}

// The (name, shape) list PyTorch loaded with strict=True, in state_dict order.
inline std::vector<std::pair<std::string, tg::Shape>> torch_state(const nlohmann::json& doc) {
  std::vector<std::pair<std::string, tg::Shape>> out;
  for (const nlohmann::json& e : doc.at("state_dict"))
    out.emplace_back(e.at("name").get<std::string>(), json_shape(e.at("shape")));
  return out;
}

// The model tensors of a checkpoint file (its "optimizer.*" tensors left out), in file order.
inline std::vector<std::pair<std::string, tg::Shape>> file_state(const std::string& path) {
  std::vector<std::pair<std::string, tg::Shape>> out;
  for (const auto& [name, array] : tg::read_safetensors(path).tensors)
    if (name.rfind("optimizer.", 0) != 0) out.emplace_back(name, array.shape());
  return out;
}

// The first n test images of the MNIST folder `dir`, normalized as the checkpoint says: [n, 1, 28, 28].
inline tg::Array first_test_images(const std::string& dir, const tg::cli::RunInfo& info, std::size_t n) {
  const tg::MNIST test(dir, tg::Split::Test, {info.mean.at(0), info.std.at(0)});
  tg::Array x = tg::Array::from_shape({n, 1, 28, 28});
  for (std::size_t i = 0; i < n; ++i) test.normalized(i, x.data() + i * 784);
  return x;
}

// The checkpoint's model (in eval mode) on the fixture's images gives the fixture's logits, each within
// 1e-5 + 1e-4 |PyTorch's|. Returns the largest difference.
inline float check_torch_logits(tg::cli::Checkpoint& ckpt, const nlohmann::json& doc,
                                const std::string& mnist) {
  const nlohmann::json& logits = doc.at("logits");
  const tg::Shape shape = json_shape(logits.at("shape"));
  REQUIRE(shape.size() == 2);
  const std::vector<float> expected = logits.at("data").get<std::vector<float>>();
  ckpt.model.eval();
  tg::NoGradGuard no_grad;
  const tg::Array got = ckpt.model(tg::Tensor(first_test_images(mnist, ckpt.info, shape[0]))).value();
  REQUIRE(got.shape() == shape);
  float worst = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const float diff = std::abs(got.data()[i] - expected[i]);
    worst = std::max(worst, diff);
    INFO("logit ", i / shape[1], ",", i % shape[1], ": tapegrad ", got.data()[i], ", PyTorch ", expected[i]);
    CHECK(diff <= 1e-5f + 1e-4f * std::abs(expected[i]));
  }
  return worst;
}

// `tapegrad eval CHECKPOINT --data DATA` names the model (`model_line`, e.g. "small
// (tests/fixtures/cli/small.tg)") and the test accuracy its training run recorded, and writes its per-class
// CSV into `dir`.
inline void check_eval_of_checkpoint(const std::string& tapegrad, const std::string& checkpoint,
                                     const std::string& data, const std::string& model_line,
                                     const TempDir& dir) {
  const tg::cli::RunInfo info = tg::cli::from_metadata(tg::read_safetensors(checkpoint).metadata, checkpoint);
  REQUIRE_FALSE(info.history.empty());
  const RunResult r =
      run(tapegrad + " eval " + checkpoint + " --data " + data + " --out " + dir.path.string());
  INFO(r.output);
  REQUIRE(r.code == 0);
  CHECK(r.output.find(model_line) != std::string::npos);
  char accuracy[32];
  std::snprintf(accuracy, sizeof accuracy, "accuracy %.2f%%", 100.0 * info.history.back().test_accuracy);
  CHECK(r.output.find(accuracy) != std::string::npos);
  CHECK(std::filesystem::exists(dir.file("eval_per_class.csv")));  // there, not beside the fixture
}

// `tapegrad predict CHECKPOINT` on the first 8 test images of the MNIST folder `data`, written as PNGs into
// `dir`, names the class the checkpoint's own model gives each. Not PyTorch's argmax of the fixture: predict
// reads PNGs through load_image (an stb resize, even to the same size), and a barely trained model's logits
// are close enough for that to change a class.
inline void check_predict_of_checkpoint(const std::string& tapegrad, const std::string& checkpoint,
                                        const std::string& data, const TempDir& dir) {
  tg::cli::Checkpoint ckpt = tg::cli::open_checkpoint(checkpoint);
  const tg::cli::RunInfo& info = ckpt.info;
  ckpt.model.eval();
  tg::NoGradGuard no_grad;
  const tg::MNIST test(data, tg::Split::Test);
  std::string args;
  std::vector<std::string> lines;
  for (std::size_t i = 0; i < 8; ++i) {
    const std::string png = dir.file("test" + std::to_string(i) + ".png");
    tg::write_png(png, std::vector<std::uint8_t>(test.pixels(i), test.pixels(i) + 784), 28, 28);
    args += " " + png;
    const tg::Array x = tg::load_image(png, 28, 28, {.mean = info.mean[0], .std = info.std[0]});
    const tg::Array logits = ckpt.model(tg::Tensor(x)).value();
    const auto best =
        static_cast<std::size_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    lines.push_back(png + ": " + info.class_names.at(best) + "  (");
  }
  const RunResult r = run(tapegrad + " predict " + checkpoint + args);
  INFO(r.output);
  REQUIRE(r.code == 0);
  for (const std::string& line : lines) CHECK_MESSAGE(r.output.find(line) != std::string::npos, line);
}

}  // namespace test_util
