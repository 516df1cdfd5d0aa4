// Module buffers: state that is saved, loaded and broadcast with the parameters but never trained
// (BatchNorm's running statistics). Keys and order follow PyTorch's state_dict.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "tapegrad.hpp"
#include "test_util.hpp"

using tg::Array;
using tg::Tensor;
using namespace test_util;

namespace {

// A per-feature layer shaped like nn.BatchNorm1d: parameters weight, bias; buffers running_mean, running_var,
// num_batches_tracked. In train() each forward folds the batch's statistics into the running ones
// (momentum 0.1); the output is (x - running_mean) * weight + bias, x [N, F].
class RunningStats : public tg::Module {
 public:
  explicit RunningStats(std::size_t features)
      : weight(xt::ones<float>({features})),
        bias(xt::zeros<float>({features})),
        running_mean(xt::zeros<float>({features})),
        running_var(xt::ones<float>({features})),
        num_batches_tracked(Array{0.f}) {
    register_parameter("weight", weight);
    register_parameter("bias", bias);
    register_buffer("running_mean", running_mean);
    register_buffer("running_var", running_var);
    register_buffer("num_batches_tracked", num_batches_tracked);
  }

  Tensor forward(const Tensor& x) override {
    if (is_training()) {
      const Array batch_mean = xt::mean(x.value(), {0});                          // [F]
      const Array batch_var = xt::mean(xt::square(x.value() - batch_mean), {0});  // [F]
      running_mean.value() = Array(0.9f * running_mean.value() + 0.1f * batch_mean);
      running_var.value() = Array(0.9f * running_var.value() + 0.1f * batch_var);
      num_batches_tracked.value() = Array(num_batches_tracked.value() + 1.f);
    }
    return (x - running_mean) * weight + bias;
  }

  Tensor weight, bias, running_mean, running_var, num_batches_tracked;
};

// Exposes the registration calls, to test what they refuse.
class Registrar : public tg::Module {
 public:
  Tensor forward(const Tensor& x) override { return x; }
  using tg::Module::register_buffer;
  using tg::Module::register_parameter;
};

// The tapegrad twin of nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 2),
// nn.BatchNorm1d(2)).
tg::Sequential model_with_buffers() {
  return tg::Sequential(tg::Linear(4, 3), RunningStats(3), tg::ReLU(), tg::Linear(3, 2), RunningStats(2));
}

// That nn.Sequential's state_dict().keys(), in order.
const std::vector<std::string> kTorchStateDictKeys = {
    "0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var", "1.num_batches_tracked",
    "3.weight", "3.bias", "4.weight", "4.bias", "4.running_mean", "4.running_var", "4.num_batches_tracked"};

std::vector<Array> values_of(const std::vector<std::pair<std::string, Tensor>>& named) {
  std::vector<Array> values;
  for (const auto& [name, t] : named) values.push_back(t.value());
  return values;
}

// A batch [2, 4] of the values start, start + step, ...
Tensor batch(float start, float step) {
  Array x = start + step * xt::arange<float>(8.f);
  x.reshape({2, 4});
  return Tensor(std::move(x));
}

// A few forwards (in train mode: the running statistics move away from their initial values).
void run_batches(tg::Sequential& model, int batches) {
  for (int i = 0; i < batches; ++i) model(batch(static_cast<float>(i), 0.25f));
}

}  // namespace

TEST_CASE("named_buffers uses PyTorch state_dict keys and is not part of parameters()") {
  tg::Sequential model = model_with_buffers();
  CHECK(names_of(model.named_buffers()) ==
        std::vector<std::string>{"1.running_mean", "1.running_var", "1.num_batches_tracked", "4.running_mean",
                                 "4.running_var", "4.num_batches_tracked"});
  CHECK(model.buffers().size() == 6);
  CHECK(names_of(model.named_parameters()) == std::vector<std::string>{"0.weight", "0.bias", "1.weight",
                                                                       "1.bias", "3.weight", "3.bias",
                                                                       "4.weight", "4.bias"});
  for (const Tensor& b : model.buffers()) {
    CHECK_FALSE(b.requires_grad());
    for (const Tensor& p : model.parameters()) CHECK(p.node() != b.node());
  }
  CHECK(model.num_parameters() == 4 * 3 + 3 + 3 + 3 + 3 * 2 + 2 + 2 + 2);  // buffers not counted
}

TEST_CASE("named_state interleaves parameters and buffers per module, in PyTorch's state_dict order") {
  tg::Sequential model = model_with_buffers();
  CHECK(names_of(model.named_state()) == kTorchStateDictKeys);
  tg::Sequential plain(tg::Linear(4, 3), tg::ReLU(), tg::Linear(3, 2));  // no buffers: the parameters alone
  CHECK(names_of(plain.named_state()) == names_of(plain.named_parameters()));
}

TEST_CASE("forward in train() updates buffers, eval() leaves them alone") {
  tg::Sequential model = model_with_buffers();
  auto& stats = model.at<RunningStats>(1);
  run_batches(model, 2);
  CHECK(stats.num_batches_tracked.item() == 2.f);
  CHECK(xt::any(xt::not_equal(stats.running_mean.value(), 0.f)));
  const std::vector<Array> before = values_of(model.named_buffers());
  model.eval();
  run_batches(model, 1);
  CHECK(values_of(model.named_buffers()) == before);
}

TEST_CASE("buffers get no gradient and an optimizer step leaves them unchanged") {
  tg::Sequential model = model_with_buffers();
  tg::SGD opt(model.parameters(), {.lr = 0.5f, .momentum = 0.9f, .weight_decay = 0.1f});
  for (int step = 0; step < 3; ++step) {
    opt.zero_grad();
    tg::cross_entropy(model(batch(-0.3f, 0.125f)), {0, 1}).backward();
    const std::vector<Array> buffers_before = values_of(model.named_buffers());
    const std::vector<Array> params_before = values_of(model.named_parameters());
    opt.step();
    CHECK(values_of(model.named_buffers()) == buffers_before);
    CHECK(values_of(model.named_parameters()) != params_before);  // the step did change the parameters
  }
  for (const Tensor& b : model.buffers()) {
    CHECK_FALSE(b.requires_grad());
    CHECK(xt::all(xt::equal(b.grad(), 0.f)));
  }
}

TEST_CASE("a moved module's buffers are handles to its members' nodes") {
  RunningStats a(3);
  tg::Node* const mean_node = a.running_mean.node();
  RunningStats b = std::move(a);
  const auto named = b.named_buffers();
  REQUIRE(named.size() == 3);
  CHECK(named[0].first == "running_mean");
  CHECK(named[0].second.node() == mean_node);
  CHECK(named[0].second.node() == b.running_mean.node());
  b(Tensor(Array{{1.f, 2.f, 3.f}}));
  CHECK(b.named_buffers()[2].second.item() == 1.f);  // num_batches_tracked, updated through the member
}

TEST_CASE("register_buffer refuses a tensor that requires grad and a name the module already uses") {
  Registrar m;
  Tensor trained(Array{1.f, 2.f}, /*requires_grad=*/true);
  CHECK_THROWS_WITH_AS(m.register_buffer("scale", trained), doctest::Contains("register_buffer 'scale'"),
                       tg::Error);
  CHECK_THROWS_WITH_AS(m.register_buffer("scale", trained), doctest::Contains("requires_grad"), tg::Error);
  CHECK(trained.requires_grad());  // refused, not silently switched off
  Tensor none;
  CHECK_THROWS_AS(m.register_buffer("none", none), tg::Error);
  CHECK(m.named_buffers().empty());

  Tensor weight(Array{1.f});
  m.register_parameter("weight", weight);
  Tensor stats(Array{0.f});
  CHECK_THROWS_WITH_AS(m.register_buffer("weight", stats), doctest::Contains("already has a parameter"),
                       tg::Error);
  m.register_buffer("stats", stats);
  Tensor again(Array{0.f});
  CHECK_THROWS_WITH_AS(m.register_buffer("stats", again), doctest::Contains("already has a buffer"),
                       tg::Error);
  CHECK_THROWS_WITH_AS(m.register_parameter("stats", again), doctest::Contains("already has a buffer"),
                       tg::Error);
  CHECK(names_of(m.named_state()) == std::vector<std::string>{"weight", "stats"});
}

TEST_CASE("save writes parameters and buffers in PyTorch's state_dict order; load restores them") {
  TempDir dir;
  tg::manual_seed(1);
  tg::Sequential a = model_with_buffers();
  run_batches(a, 3);
  tg::save(a, dir.file("m.safetensors"));
  CHECK(names_of(a.named_state()) == kTorchStateDictKeys);
  std::vector<std::string> file_names;
  for (const auto& [name, value] : tg::read_safetensors(dir.file("m.safetensors")).tensors)
    file_names.push_back(name);
  CHECK(file_names == kTorchStateDictKeys);

  tg::manual_seed(2);
  tg::Sequential b = model_with_buffers();
  REQUIRE(values_of(b.named_buffers()) != values_of(a.named_buffers()));
  tg::load(b, dir.file("m.safetensors"));
  CHECK(values_of(b.named_state()) == values_of(a.named_state()));
  CHECK(b.at<RunningStats>(1).num_batches_tracked.item() == 3.f);
}

TEST_CASE("load rejects a file whose buffer is mis-shaped, missing or unknown, and changes nothing") {
  TempDir dir;
  tg::Sequential source = model_with_buffers();
  run_batches(source, 1);
  // A file with the model's state, `name` replaced by `replacement` (or left out when it is null), plus
  // `extra`.
  auto write = [&](const std::string& path, const std::string& name, const Array* replacement,
                   const std::vector<std::pair<std::string, const Array*>>& extra = {}) {
    std::vector<std::pair<std::string, const Array*>> tensors;
    for (const auto& [key, t] : source.named_state()) {
      if (key != name)
        tensors.emplace_back(key, &t.value());
      else if (replacement)
        tensors.emplace_back(key, replacement);
    }
    tensors.insert(tensors.end(), extra.begin(), extra.end());
    tg::write_safetensors(path, tensors);
  };
  const Array wrong_shape = xt::ones<float>({4});
  write(dir.file("shape.safetensors"), "1.running_var", &wrong_shape);
  write(dir.file("missing.safetensors"), "4.num_batches_tracked", nullptr);
  write(dir.file("extra.safetensors"), "", nullptr, {{"4.running_max", &wrong_shape}});

  tg::Sequential model = model_with_buffers();
  const std::vector<Array> before = values_of(model.named_state());
  CHECK_THROWS_WITH_AS(
      tg::load(model, dir.file("shape.safetensors")),
      doctest::Contains("shape.safetensors: tensor '1.running_var' has shape [4], the model expects [3]"),
      tg::Error);
  CHECK(values_of(model.named_state()) == before);
  CHECK_THROWS_WITH_AS(tg::load(model, dir.file("missing.safetensors")),
                       doctest::Contains("missing tensor '4.num_batches_tracked'"), tg::Error);
  CHECK(values_of(model.named_state()) == before);
  CHECK_THROWS_WITH_AS(tg::load(model, dir.file("extra.safetensors")),
                       doctest::Contains("unexpected tensor '4.running_max'"), tg::Error);
  CHECK(values_of(model.named_state()) == before);

  // A file of the same layers without buffers (e.g. from before buffers existed) lacks them too.
  tg::Sequential no_buffers(tg::Linear(4, 3), Registrar(), tg::ReLU(), tg::Linear(3, 2));
  tg::save(no_buffers, dir.file("params_only.safetensors"));
  CHECK_THROWS_AS(tg::load(model, dir.file("params_only.safetensors")), tg::Error);
  CHECK(values_of(model.named_state()) == before);
}

TEST_CASE("broadcast_parameters(model) in a world of one leaves parameters and buffers unchanged") {
  tg::Sequential model = model_with_buffers();
  run_batches(model, 2);
  const std::vector<Array> before = values_of(model.named_state());
  tg::distributed::broadcast_parameters(model);
  tg::distributed::broadcast_parameters(model, 0);
  CHECK(values_of(model.named_state()) == before);
}
