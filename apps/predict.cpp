// predict: classifies images with a checkpoint written by train_mnist.
//   predict runs/lenet/model.safetensors digit.png [more.png ...]
// Prints each image's class and its top-3 probabilities. Exit 0 when every image was classified,
// 1 on a model or image error (other images are still classified), 2 on usage errors.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <numeric>

#include "models.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Classify images (PNG, JPEG, BMP) with a tapegrad MNIST checkpoint"};
  std::string checkpoint, model_name, invert = "auto";
  std::vector<std::string> images;
  app.add_option("checkpoint", checkpoint, "a .safetensors file written by train_mnist")->required();
  app.add_option("images", images, "images to classify; any size or channel count")->required();
  app.add_option("--model", model_name, "architecture, if the checkpoint does not say (lenet or convnet)")
      ->check(CLI::IsMember(tg::apps::model_names()));
  app.add_option("--invert", invert,
                 "auto: invert dark-on-light images to MNIST's light-on-dark; never; always")
      ->check(CLI::IsMember({"auto", "never", "always"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  tg::Sequential model;
  tg::MNISTOptions norm;
  try {
    const tg::SafetensorsFile file = tg::read_safetensors(checkpoint);
    if (model_name.empty()) {
      auto it = file.metadata.find("model");
      if (it == file.metadata.end()) {
        tg::fail(checkpoint,
                 ": the checkpoint does not name its architecture; pass --model lenet or --model convnet");
      }
      model_name = it->second;
    }
    if (auto it = file.metadata.find("dataset"); it != file.metadata.end() && it->second == "fashion") {
      norm = tg::MNISTOptions::fashion();
    }
    model = tg::apps::make_model(model_name);
    tg::load(model, checkpoint);
  } catch (const std::exception& e) {  // tg::Error, and file-system or allocation failures
    std::fprintf(stderr, "predict: error: %s\n", e.what());
    return 1;
  }
  model.eval();
  tg::NoGradGuard no_grad;

  const tg::ImageOptions options{.invert = invert == "auto"     ? tg::Invert::Auto
                                           : invert == "always" ? tg::Invert::Always
                                                                : tg::Invert::Never,
                                 .mean = norm.mean,
                                 .std = norm.std};
  int failures = 0;
  for (const std::string& path : images) {
    try {
      const tg::Tensor x(tg::load_image(path, 28, 28, options));
      const tg::Array probs = tg::softmax(model(x)).value();
      std::vector<std::size_t> order(probs.size());
      std::iota(order.begin(), order.end(), 0);
      std::partial_sort(order.begin(), order.begin() + 3, order.end(),
                        [&](std::size_t a, std::size_t b) { return probs.data()[a] > probs.data()[b]; });
      std::printf("%s: %zu  (", path.c_str(), order[0]);
      for (int k = 0; k < 3; ++k)
        std::printf("%s%zu %.2f%%", k ? ", " : "", order[k], 100.0 * probs.data()[order[k]]);
      std::printf(")\n");
    } catch (const std::exception& e) {
      std::fprintf(stderr, "predict: error: %s\n", e.what());
      ++failures;
    }
  }
  return failures == 0 ? 0 : 1;
}
