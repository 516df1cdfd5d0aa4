// train_mnist: trains a classifier on MNIST and prints the test accuracy after each epoch.
// (Interim model until layers land: a 784-128-10 MLP built from core ops.)
#include <CLI/CLI.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>

#include "tapegrad.hpp"

namespace {

struct Mlp {
  tg::Tensor w1, b1, w2, b2;
  explicit Mlp(tg::Generator& gen) {
    // PyTorch's nn.Linear default: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias
    auto uniform = [&gen](tg::Shape shape, std::size_t fan_in) {
      const float bound = 1.f / std::sqrt(static_cast<float>(fan_in));
      return tg::Tensor(tg::rand_uniform(shape, -bound, bound, gen), true);
    };
    w1 = uniform({128, 784}, 784);
    b1 = uniform({128}, 784);
    w2 = uniform({10, 128}, 128);
    b2 = uniform({10}, 128);
  }
  tg::Tensor operator()(const tg::Tensor& images) const {
    return tg::linear(tg::relu(tg::linear(tg::flatten(images), w1, b1)), w2, b2);
  }
  std::vector<tg::Tensor> parameters() const { return {w1, b1, w2, b2}; }
};

// Plain SGD with momentum, PyTorch's rule: v = m v + g; p -= lr v.
void sgd_step(std::vector<tg::Tensor>& params, std::vector<tg::Array>& velocity, float lr, float momentum) {
  tg::NoGradGuard no_grad;
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (velocity[i].shape() != params[i].shape()) velocity[i] = params[i].grad();
    else velocity[i] = momentum * velocity[i] + params[i].grad();
    params[i].value() -= lr * velocity[i];
    params[i].zero_grad();
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Train a classifier on MNIST with tapegrad"};
  std::string data_dir = ".cache/mnist";
  int epochs = 3, threads = tg::num_threads();
  std::size_t batch_size = 64, limit = 0;
  float lr = 0.05f, momentum = 0.9f;
  std::uint64_t seed = 1;
  app.add_option("--data", data_dir, "folder with the MNIST IDX files (raw or .gz)");
  app.add_option("--epochs", epochs, "passes over the training set")->check(CLI::PositiveNumber);
  app.add_option("--batch-size", batch_size, "examples per step")->check(CLI::PositiveNumber);
  app.add_option("--lr", lr, "learning rate")->check(CLI::PositiveNumber);
  app.add_option("--momentum", momentum, "SGD momentum")->check(CLI::Range(0.f, 1.f));
  app.add_option("--seed", seed, "seed of initialization and shuffling");
  app.add_option("--threads", threads, "threads (OpenBLAS included)")->check(CLI::PositiveNumber);
  app.add_option("--limit", limit, "use only the first N training images (0: all)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  try {
    tg::set_num_threads(threads);
    tg::manual_seed(seed);
    tg::MNIST train(data_dir, tg::Split::Train);
    tg::MNIST test(data_dir, tg::Split::Test);
    if (limit > 0) train.keep_first(limit);
    tg::Generator init(seed);
    Mlp model(init);
    std::vector<tg::Tensor> params = model.parameters();
    std::vector<tg::Array> velocity(params.size());
    tg::DataLoader loader(train, {.batch_size = batch_size, .shuffle = true, .seed = seed});
    tg::DataLoader test_loader(test, {.batch_size = 1000, .shuffle = false});
    std::printf("model: MLP 784-128-10 | train %zu, test %zu images | batch %zu, lr %g, momentum %g, %d threads\n",
                train.size(), test.size(), batch_size, lr, momentum, threads);

    for (int epoch = 1; epoch <= epochs; ++epoch) {
      const auto start = std::chrono::steady_clock::now();
      double loss_sum = 0.0;
      std::size_t seen = 0;
      for (const tg::Batch& batch : loader) {
        tg::Tensor loss = tg::cross_entropy(model(batch.images), batch.labels);
        loss.backward();
        sgd_step(params, velocity, lr, momentum);
        loss_sum += loss.item() * static_cast<double>(batch.labels.size());
        seen += batch.labels.size();
      }
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::size_t correct = 0;
      {
        tg::NoGradGuard no_grad;
        for (const tg::Batch& batch : test_loader) {
          const tg::Array logits = model(batch.images).value();
          for (std::size_t i = 0; i < batch.labels.size(); ++i) {
            const float* row = logits.data() + i * 10;
            correct += static_cast<std::size_t>(std::max_element(row, row + 10) - row) ==
                       static_cast<std::size_t>(batch.labels[i]);
          }
        }
      }
      std::printf("epoch %d: train loss %.4f, %.0f img/s | test accuracy %.2f%%\n", epoch, loss_sum / seen,
                  seen / seconds, 100.0 * correct / test.size());
      std::fflush(stdout);
    }
  } catch (const tg::Error& e) {
    std::fprintf(stderr, "train_mnist: %s\n", e.what());
    return 1;
  }
  return 0;
}
