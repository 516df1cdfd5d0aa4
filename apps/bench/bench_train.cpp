// bench_train: end-to-end throughput of one model, the tapegrad side of the training rows of
// docs/benchmarks.md.
//   bench_train --model lenet --threads 2 --data .cache/mnist [--epochs 1] [--limit N]
//   bench_train --model cifarnet|mobilenet|resnet20|mobilenetv2 --threads 2 [--optimizer sgd|adamw]
//       [--images 10000]
//   ... [--onnx MODEL.onnx] (either form above)
//   bench_train --pipeline [--augment flip,crop=4] --threads 2 [--images 10000]
//   bench_train --decode DIR --threads 2 [--images 10000] [--data .cache/mnist]
// Trains (batch 64, SGD lr 0.05 momentum 0.9, cross-entropy, shuffled with a fixed seed; the timed loop
// includes batching, forward, backward and step), runs inference on the test set with batch 1000, times
// batch-1 inference as `tapegrad predict` runs it ("latency_us": median and p99 of 1,000 calls on one test
// image), and prints one JSON object with the same keys as bench_torch.py's train subcommand. The 3x32x32
// models train on random data (batch 128, --images images, 2,000 test images), as bench_torch.py and
// bench_libtorch do: the speed does not depend on the pixels.
// --pipeline times the data pipeline alone (docs/benchmarks.md, "data pipeline"): DataLoader's batching,
// normalization and augmentation of --images random 3x32x32 byte images, batch 64, one epoch after an untimed
// one.
// --onnx PATH also writes the model it benchmarks as ONNX (tg::save_onnx, opset 13, batch norms as they are),
// after the latency calls: the same layers and weights that were timed (initialized, then the few training
// steps of --images / --limit), eval mode, input [N, C, H, W] of the model's size (1x28x28 or 3x32x32), for
// onnxruntime's side of scripts/bench.py --onnx. The JSON then names it ("onnx").
// --decode times reading a folder of PNGs into memory (docs/benchmarks.md, "data pipeline"): ImageFolder on
// DIR/train/<digit>/, first written there from the MNIST training images (28x28 gray) when DIR does not hold
// --images of them yet; one untimed read first (the files in the page cache, as in training after the first
// epoch).
#include <sys/resource.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <numeric>
#include <random>

#include "cli/models.hpp"
#include "layers/onnx/onnx.hpp"
#include "tapegrad.hpp"

namespace {
double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double peak_rss_mib() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

std::unique_ptr<tg::Optimizer> make_optimizer(const std::string& kind,
                                              const std::vector<tg::Tensor>& params) {
  if (kind == "adamw") return std::make_unique<tg::AdamW>(params, tg::AdamWOptions{.lr = 1e-3f});
  return std::make_unique<tg::SGD>(params, tg::SGDOptions{.lr = 0.05f, .momentum = 0.9f});
}

// Batch-1 inference as `tapegrad predict` runs it (eval mode, NoGradGuard, model(x) on one [1, C, H, W]
// image): 20 warm-up calls, then 1,000 timed one by one. The JSON member "latency_us": median and p99 (the
// 990th of 1,000) in microseconds, as the twins report it.
std::string latency_json(tg::Sequential& model, const tg::Array& image) {
  model.eval();
  tg::NoGradGuard no_grad;
  const tg::Tensor x(image);
  for (int i = 0; i < 20; ++i) model(x);
  std::vector<double> us(1000);
  for (double& t : us) {
    const double start = now();
    model(x);
    t = (now() - start) * 1e6;
  }
  std::sort(us.begin(), us.end());
  char buf[80];
  std::snprintf(buf, sizeof buf, "\"latency_us\": {\"median\": %.2f, \"p99\": %.2f}", (us[499] + us[500]) / 2,
                us[989]);
  return buf;
}

// --onnx: the benchmarked model as an ONNX file (empty path: nothing); the JSON member naming it, or "".
std::string write_onnx(tg::Sequential& model, const std::string& path, const tg::Shape& input,
                       const std::string& source) {
  if (path.empty()) return "";
  tg::OnnxModelInfo info;
  info.input = input;
  info.model_source = source;
  const tg::OnnxExportReport report = tg::save_onnx(model, info, path);
  return ", \"onnx\": {\"path\": \"" + path + "\", \"nodes\": " + std::to_string(report.nodes) +
         ", \"bytes\": " + std::to_string(report.bytes) + "}";
}

// One epoch of a 3x32x32 model on random images (normal pixels, uniform labels), batch 128, then inference on
// 2,000 more; the batching gathers the shuffled images into one array per step, as x[idx] does in PyTorch.
int train_random(const std::string& model_name, int threads, const std::string& optimizer, std::size_t images,
                 const std::string& onnx_path) {
  tg::manual_seed(1);
  constexpr std::size_t kPixels = 3 * 32 * 32, kBatch = 128, kTest = 2000;
  tg::Generator gen(1);
  const tg::Array x_train = tg::randn({images, 3, 32, 32}, gen), x_test = tg::randn({kTest, 3, 32, 32}, gen);
  std::mt19937 rng(1);
  std::vector<int> y_train(images);
  for (int& y : y_train) y = static_cast<int>(rng() % 10);
  const tg::cli::ModelText text = tg::cli::find_model(model_name);
  tg::Sequential model = tg::model_from_text(text.text, {3, 32, 32}, 10, text.source);
  const std::unique_ptr<tg::Optimizer> opt = make_optimizer(optimizer, model.parameters());
  std::vector<std::size_t> order(images);
  std::iota(order.begin(), order.end(), std::size_t{0});
  const double start = now();
  std::shuffle(order.begin(), order.end(), rng);
  double loss_sum = 0;
  std::size_t steps = 0;
  for (std::size_t i = 0; i < images; i += kBatch) {
    const std::size_t b = std::min(kBatch, images - i);
    tg::Array xb = tg::Array::from_shape({b, 3, 32, 32});
    std::vector<int> yb(b);
    for (std::size_t j = 0; j < b; ++j) {
      std::memcpy(xb.data() + j * kPixels, x_train.data() + order[i + j] * kPixels, kPixels * sizeof(float));
      yb[j] = y_train[order[i + j]];
    }
    tg::Tensor loss = tg::cross_entropy(model(tg::Tensor(std::move(xb))), yb);
    opt->zero_grad();
    loss.backward();
    opt->step();
    loss_sum += loss.item();
    ++steps;
  }
  const double train_seconds = now() - start;
  tg::release_free_memory();  // as tapegrad train's evaluation (apps/cli/evaluation.cpp)
  tg::NoGradGuard no_grad;
  model.eval();
  const auto batch_of = [&](std::size_t first) {
    tg::Array xb = tg::Array::from_shape({1000, 3, 32, 32});
    std::memcpy(xb.data(), x_test.data() + first * kPixels, 1000 * kPixels * sizeof(float));
    return tg::Tensor(std::move(xb));
  };
  model(batch_of(0));  // untimed warm-up batch
  const double infer_start = now();
  for (std::size_t i = 0; i < kTest; i += 1000) model(batch_of(i));
  const double infer_rate = static_cast<double>(kTest) / (now() - infer_start);
  tg::Array image = tg::Array::from_shape({1, 3, 32, 32});
  std::memcpy(image.data(), x_test.data(), kPixels * sizeof(float));
  const std::string latency = latency_json(model, image);
  const std::string onnx = write_onnx(model, onnx_path, {3, 32, 32}, text.source);
  std::printf(
      "{\"model\": \"%s\", \"threads\": %d, \"precision\": \"%s\", \"optimizer\": \"%s\", "
      "\"train_images_per_s\": %.1f, "
      "\"epoch_seconds\": %.3f, \"train_loss\": %.5f, \"infer_images_per_s\": %.1f, \"test_accuracy\": 0, "
      "\"peak_rss_mib\": %.1f, %s%s}\n",
      model_name.c_str(), threads, tg::precision_name(tg::precision()), optimizer.c_str(),
      static_cast<double>(images) / train_seconds, train_seconds, loss_sum / static_cast<double>(steps),
      infer_rate, peak_rss_mib(), latency.c_str(), onnx.c_str());
  return 0;
}

// Random bytes in CIFAR-10's shape, normalized with CIFAR-10's usual statistics.
class RandomImages final : public tg::ImageDataset {
 public:
  explicit RandomImages(std::size_t n) : bytes_(n * kPixels), labels_(n) {
    std::mt19937 rng(1);
    for (std::uint8_t& b : bytes_) b = static_cast<std::uint8_t>(rng());
    for (int& y : labels_) y = static_cast<int>(rng() % 10);
  }
  std::size_t size() const override { return labels_.size(); }
  std::size_t channels() const override { return 3; }
  std::size_t rows() const override { return 32; }
  std::size_t cols() const override { return 32; }
  int label(std::size_t i) const override { return labels_[i]; }
  const std::uint8_t* pixels(std::size_t i) const override { return bytes_.data() + i * kPixels; }
  void normalized(std::size_t i, float* out) const override {
    tg::normalize_planes(pixels(i), 3, 1024, kMean, kStd, out);
  }
  std::vector<float> channel_mean() const override { return {kMean, kMean + 3}; }
  std::vector<float> channel_std() const override { return {kStd, kStd + 3}; }
  void keep_first(std::size_t) override {}

 private:
  static constexpr std::size_t kPixels = 3 * 32 * 32;
  static constexpr float kMean[3] = {0.491f, 0.482f, 0.447f}, kStd[3] = {0.247f, 0.243f, 0.262f};
  std::vector<std::uint8_t> bytes_;
  std::vector<int> labels_;
};

int data_pipeline(const std::string& augment, int threads, std::size_t images) {
  const RandomImages data(images);
  const tg::Augmentation augmentation = tg::parse_augmentation(augment);
  tg::DataLoader loader(data, {.batch_size = 64, .seed = 1, .augment = augmentation});
  double checksum = 0;  // reads each batch, so that nothing is optimized away
  for (const tg::Batch& batch : loader) checksum += batch.images.value()(0, 0, 0, 0);  // untimed warm-up
  const double start = now();
  for (const tg::Batch& batch : loader) checksum += batch.images.value()(0, 0, 0, 0);
  const double seconds = now() - start;
  std::printf(
      "{\"pipeline\": \"batch 64, 3x32x32\", \"augment\": \"%s\", \"threads\": %d, \"images_per_s\": %.1f, "
      "\"seconds\": %.4f, \"checksum\": %.3f}\n",
      augmentation.text().c_str(), threads, static_cast<double>(images) / seconds, seconds, checksum);
  return 0;
}
int decode_folder(const std::string& dir, const std::string& mnist_dir, int threads, std::size_t images) {
  namespace fs = std::filesystem;
  const fs::path train = fs::path(dir) / "train";
  std::size_t present = 0;
  if (fs::exists(train))
    for (const auto& entry : fs::recursive_directory_iterator(train)) present += entry.is_regular_file();
  if (present != images) {
    // Only a folder this bench wrote (its marker inside) is replaced: --decode ~/photos must not delete
    // photos.
    const fs::path marker = fs::path(dir) / ".tapegrad-bench-decode";
    if (fs::exists(dir) && !fs::is_empty(dir) && !fs::exists(marker))
      tg::fail("--decode ", dir, ": not empty and not written by bench_train; give a new or empty folder");
    fs::remove_all(dir);
    fs::create_directories(dir);
    std::ofstream(marker) << "written by bench_train --decode; replaced when --images changes\n";
    const tg::MNIST mnist(mnist_dir, tg::Split::Train);
    if (images > mnist.size()) tg::fail("--images ", images, ": ", mnist_dir, " has ", mnist.size());
    for (std::size_t i = 0; i < images; ++i) {
      const fs::path folder = train / std::to_string(mnist.label(i));
      fs::create_directories(folder);
      const std::uint8_t* px = mnist.pixels(i);
      tg::write_png((folder / ("img" + std::to_string(i) + ".png")).string(),
                    std::vector<std::uint8_t>(px, px + mnist.example_size()), mnist.cols(), mnist.rows());
    }
  }
  tg::ImageFolder(dir, tg::Split::Train);  // untimed: the files in the page cache
  const double start = now();
  const tg::ImageFolder data(dir, tg::Split::Train);
  const double seconds = now() - start;
  std::printf(
      "{\"decode\": \"%zu PNGs %zux%zu %s\", \"threads\": %d, \"images_per_s\": %.1f, \"seconds\": %.4f}\n",
      data.size(), data.rows(), data.cols(), data.channels() == 1 ? "gray" : "RGB", threads,
      static_cast<double>(data.size()) / seconds, seconds);
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tapegrad training and inference throughput"};
  std::string model_name = "lenet", data = ".cache/mnist";
  int threads = 1, epochs = 1;
  std::size_t limit = 0, images = 10000;
  std::string optimizer = "sgd", augment = "flip,crop=4";
  bool pipeline = false;
  std::string decode_dir, onnx_path;
  app.add_option("--model", model_name, "a built-in model or a model file");
  app.add_option("--onnx", onnx_path, "also write the benchmarked model (eval mode) there as ONNX");
  app.add_flag("--pipeline", pipeline, "time the data pipeline alone (batching, normalization, --augment)");
  app.add_option("--augment", augment, "--pipeline's augmentation (default flip,crop=4)");
  app.add_option("--decode", decode_dir, "time reading a folder of PNGs (written there first from --data)");
  app.add_option("--optimizer", optimizer)->check(CLI::IsMember({"sgd", "adamw"}));
  app.add_option("--images", images, "random images of the 3x32x32 models and of --pipeline")
      ->check(CLI::Range(1, 1000000));
  app.add_option("--threads", threads)->check(CLI::Range(1, 256));
  app.add_option("--data", data);
  app.add_option("--epochs", epochs)->check(CLI::Range(1, 100));
  app.add_option("--limit", limit);
  std::string precision = "fp32";
  app.add_option("--precision", precision, "fp32 or bf16 (mixed precision, as tapegrad train --precision)");
  CLI11_PARSE(app, argc, argv);
  try {
    tg::set_num_threads(threads);
    tg::set_precision(tg::parse_precision(precision));
    if (pipeline) return data_pipeline(augment, threads, images);
    if (!decode_dir.empty()) return decode_folder(decode_dir, data, threads, images);
    if (model_name == "cifarnet" || model_name == "mobilenet" || model_name == "resnet20" ||
        model_name == "mobilenetv2") {
      return train_random(model_name, threads, optimizer, images, onnx_path);
    }
    tg::manual_seed(1);
    tg::MNIST train(data, tg::Split::Train);
    tg::MNIST test(data, tg::Split::Test);
    if (limit > 0) train.keep_first(limit);
    const tg::cli::ModelText text = tg::cli::find_model(model_name);
    tg::Sequential model = tg::model_from_text(text.text, {1, train.rows(), train.cols()}, 10, text.source);
    const std::unique_ptr<tg::Optimizer> opt = make_optimizer(optimizer, model.parameters());
    tg::DataLoader loader(train, {.batch_size = 64, .shuffle = true, .seed = 1});
    double train_seconds = 0, loss_sum = 0;
    std::string per_epoch;
    double test_accuracy = 0, infer_rate = 0;
    for (int epoch = 0; epoch < epochs; ++epoch) {
      const double start = now();
      loss_sum = 0;
      for (const tg::Batch& batch : loader) {
        tg::Tensor loss = tg::cross_entropy(model(batch.images), batch.labels);
        opt->zero_grad();
        loss.backward();
        opt->step();
        loss_sum += loss.item() * static_cast<double>(batch.labels.size());
      }
      const double seconds = now() - start;
      train_seconds += seconds;
      // inference: one untimed warm-up batch, then the whole test set, batch 1000
      tg::release_free_memory();  // as tapegrad train's evaluation (apps/cli/evaluation.cpp)
      tg::NoGradGuard no_grad;
      model.eval();
      tg::DataLoader test_loader(test, {.batch_size = 1000, .shuffle = false});
      model(test_loader.begin()->images);
      std::size_t correct = 0;
      const double infer_start = now();
      for (const tg::Batch& batch : test_loader) {
        const tg::Array logits = model(batch.images).value();
        for (std::size_t i = 0; i < batch.labels.size(); ++i) {
          const float* row = logits.data() + i * 10;
          correct += static_cast<int>(std::max_element(row, row + 10) - row) == batch.labels[i];
        }
      }
      infer_rate = static_cast<double>(test.size()) / (now() - infer_start);
      model.train();
      test_accuracy = static_cast<double>(correct) / static_cast<double>(test.size());
      char buf[160];
      std::snprintf(buf, sizeof buf, "%s{\"seconds\": %.3f, \"train_loss\": %.5f, \"test_accuracy\": %.4f}",
                    epoch ? ", " : "", seconds, loss_sum / static_cast<double>(train.size()), test_accuracy);
      per_epoch += buf;
    }
    tg::Array image = tg::Array::from_shape({1, 1, test.rows(), test.cols()});
    test.normalized(0, image.data());
    const std::string latency = latency_json(model, image);
    const std::string onnx = write_onnx(model, onnx_path, {1, test.rows(), test.cols()}, text.source);
    std::printf(
        "{\"model\": \"%s\", \"threads\": %d, \"precision\": \"%s\", \"train_images_per_s\": %.1f, "
        "\"epoch_seconds\": %.3f, "
        "\"train_loss\": %.5f, \"infer_images_per_s\": %.1f, \"test_accuracy\": %.4f, \"peak_rss_mib\": "
        "%.1f, %s, \"per_epoch\": [%s]%s}\n",
        model_name.c_str(), threads, tg::precision_name(tg::precision()),
        static_cast<double>(train.size()) * epochs / train_seconds, train_seconds / epochs,
        loss_sum / static_cast<double>(train.size()), infer_rate, test_accuracy, peak_rss_mib(),
        latency.c_str(), per_epoch.c_str(), onnx.c_str());
  } catch (const tg::Error& e) {
    std::fprintf(stderr, "bench_train: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
