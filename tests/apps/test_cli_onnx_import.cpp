// `tapegrad import`, `eval`/`predict`/`summary` of an .onnx, and `train --init [--new-head]` from the binary:
// PyTorch-trained models (tests/gen_fixtures_onnx.py) evaluate to PyTorch's accuracy on the same images,
// nothing is written on a bad file, and fine-tuning starts from the checkpoint's weights.
#include <doctest/doctest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/run_checkpoint.hpp"
#include "data/folder_files.hpp"
#include "tapegrad.hpp"
#include "test_util.hpp"

using namespace test_util;

namespace {

const std::string kOnnxFixtures = TG_FIXTURE_DIR "/onnx";
const std::string kBin = TG_TAPEGRAD_BIN;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// PyTorch's accuracy on mnist_small's test split, as the generator recorded it: "95.20%".
std::string torch_accuracy(const std::string& model) {
  const nlohmann::json doc = nlohmann::json::parse(read_text(kOnnxFixtures + "/expected.json"));
  const nlohmann::json& a = doc.at("models").at(model).at("accuracy");
  char text[32];
  std::snprintf(text, sizeof text, "accuracy %.2f%%",
                100.0 * a.at("correct").get<double>() / a.at("test_images").get<double>());
  return text;
}

}  // namespace

TEST_CASE("imported PyTorch models evaluate to PyTorch's accuracy on the same images (lenet, resnet20)") {
  TempDir dir;
  for (const std::string model : {"lenet_trained_op13", "resnet20_trained_op13"}) {
    CAPTURE(model);
    const std::string out = dir.file(model + ".safetensors");
    const RunResult imported = run(kBin + " import " + kOnnxFixtures + "/" + model + ".onnx " + out +
                                   " --mean 0.1307 --std 0.3081 --data " + kSmallMnist);
    INFO(imported.output);
    REQUIRE(imported.code == 0);
    CHECK(contains(imported.output, "wrote " + out));
    const RunResult evaluated = run(kBin + " eval " + out + " --threads 1");
    INFO(evaluated.output);
    REQUIRE(evaluated.code == 0);
    CHECK(contains(evaluated.output, torch_accuracy(model)));
  }
  // --data alone gives MNIST's normalization and class names, which the lenet twin was trained with.
  const RunResult by_data = run(kBin + " import " + kOnnxFixtures + "/lenet_trained_op13.onnx " +
                                dir.file("d.safetensors") + " --data " + kSmallMnist);
  REQUIRE(by_data.code == 0);
  const tg::cli::Checkpoint c = tg::cli::open_checkpoint(dir.file("d.safetensors"));
  CHECK(c.info.mean == std::vector<float>{0.1307f});
  CHECK(c.info.class_names.size() == 10);
  CHECK(contains(run(kBin + " eval " + dir.file("d.safetensors")).output,
                 torch_accuracy("lenet_trained_op13")));
}

TEST_CASE("eval, predict and summary take an .onnx file, imported in memory") {
  const std::string onnx = kOnnxFixtures + "/lenet_trained_op13.onnx";
  TempDir out;  // eval writes its tables beside the model unless --out says: not into the fixtures
  const RunResult evaluated =
      run(kBin + " eval " + onnx + " --data " + kSmallMnist + " --threads 1 --out " + out.path.string());
  INFO(evaluated.output);
  CHECK(evaluated.code == 0);
  CHECK(contains(evaluated.output, "no normalization known"));  // said once, not silently
  CHECK(contains(evaluated.output, "accuracy "));
  CHECK(std::filesystem::exists(out.file("eval_per_class.csv")));
  const RunResult no_data = run(kBin + " eval " + onnx);
  CHECK(no_data.code == 2);
  CHECK(contains(no_data.output,
                 "records no data set (an imported model): give the test data with --data DIR"));
  const RunResult summary = run(kBin + " summary " + kOnnxFixtures + "/resnet20_trained_op13.onnx");
  INFO(summary.output);
  CHECK(summary.code == 0);
  CHECK(contains(summary.output, "# imported from resnet20_trained_op13.onnx (pytorch 1.13"));
  CHECK(contains(summary.output, "shortcut\n"));
  TempDir dir;
  write_image_folder(dir.path / "digits", {"x"}, 1, 28, 28, 1, 5);
  const RunResult predicted =
      run(kBin + " predict " + onnx + " " + (dir.path / "digits").string() + "/x/*.png");
  INFO(predicted.output);
  CHECK(predicted.code == 0);
}

TEST_CASE("a bad ONNX file or bad flags: exit 1 or 2 with the reason, and nothing written") {
  TempDir dir;
  const std::string out = dir.file("out.safetensors");
  for (const std::string bad : {"bad_unsupported_op.onnx", "bad_truncated.onnx", "bad_cycle.onnx"}) {
    const RunResult r = run(kBin + " import " + kOnnxFixtures + "/" + bad + " " + out);
    CAPTURE(r.output);
    CHECK(r.code == 1);
    CHECK(contains(r.output, "tapegrad import: error: " + kOnnxFixtures + "/" + bad + ": "));
    CHECK_FALSE(std::filesystem::exists(out));
  }
  const std::string lenet = kOnnxFixtures + "/lenet_op13.onnx ";
  const RunResult mean = run(kBin + " import " + lenet + out + " --mean 0.1,0.2");
  CHECK(mean.code == 2);
  CHECK(contains(mean.output, "--mean 0.1,0.2: 2 values for a model of 1 input channels"));
  const RunResult classes = run(kBin + " import " + lenet + out + " --classes 3");
  CHECK(classes.code == 2);
  CHECK(contains(classes.output, "--classes 3: the model has 10 outputs"));
  CHECK_FALSE(std::filesystem::exists(out));
}

TEST_CASE("train --init --new-head fine-tunes an MNIST checkpoint on a 3-class folder from its weights") {
  TempDir dir;
  write_image_folder(dir.path / "data" / "train", {"a", "b", "c"}, 6, 28, 28, 1, 0);
  write_image_folder(dir.path / "data" / "test", {"a", "b", "c"}, 2, 28, 28, 1, 50);
  const std::string init = TG_FIXTURE_DIR "/cli/small.safetensors";
  const std::string common = kBin + " train --init " + init + " --data " + (dir.path / "data").string() +
                             " --epochs 1 --batch-size 6 --threads 1 --lr 1e-30 --out " + dir.file("run");
  const RunResult refused = run(common);
  CHECK(refused.code == 2);
  CHECK(contains(refused.output, "has 3 classes but the model of " + init +
                                     " was trained for 10: add --new-head to replace its last linear layer"));
  const RunResult tuned = run(common + " --new-head");
  INFO(tuned.output);
  REQUIRE(tuned.code == 0);
  CHECK(contains(tuned.output, "tensors from the checkpoint, 2 of the new head initialized afresh"));
  const tg::cli::Checkpoint before = tg::cli::open_checkpoint(init);
  const tg::cli::Checkpoint after = tg::cli::open_checkpoint(dir.file("run/model.safetensors"));
  CHECK(after.info.class_names == std::vector<std::string>{"a", "b", "c"});
  CHECK(after.info.mean == before.info.mean);  // the normalization it was trained with
  CHECK(contains(after.info.model_text, "linear classes"));
  // At a learning rate of 1e-30 every tensor but the head's is the checkpoint's, to the last bit or so.
  const auto theirs = before.model.named_state();
  std::size_t same = 0, head = 0;
  for (const auto& [name, t] : after.model.named_state()) {
    const auto it =
        std::find_if(theirs.begin(), theirs.end(), [&](const auto& p) { return p.first == name; });
    REQUIRE(it != theirs.end());
    if (it->second.shape() != t.shape()) {
      ++head;
      continue;
    }
    CHECK_MESSAGE(xt::allclose(t.value(), it->second.value(), 1e-6, 1e-7), name);
    ++same;
  }
  CHECK(head == 2);
  CHECK(same + head == theirs.size());
  const RunResult both = run(common + " --resume " + dir.file("run/model.safetensors"));
  CHECK(both.code == 2);
  CHECK(contains(both.output, "--init starts a new run and --resume continues one"));
}
