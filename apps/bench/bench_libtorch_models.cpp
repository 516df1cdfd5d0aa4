// bench_libtorch's models (bench_libtorch_models.hpp); each function mirrors bench_torch.py's make_model.
#include "bench/bench_libtorch_models.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <tuple>
#include <utility>

namespace bench {
namespace {

namespace nn = torch::nn;

// body(x) + x, or body(x) + shortcut(x): the Residual of docs/model-files.md (tg::Residual), with PyTorch's
// state_dict keys "body.*" and "shortcut.*".
struct ResidualImpl : nn::Module {
  explicit ResidualImpl(nn::Sequential body_, nn::Sequential shortcut_ = nullptr)
      : body(register_module("body", std::move(body_))) {
    if (shortcut_) shortcut = register_module("shortcut", std::move(shortcut_));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return body->forward(x) + (shortcut ? shortcut->forward(x) : x);
  }
  nn::Sequential body, shortcut{nullptr};
};
TORCH_MODULE(Residual);

// Modules are built one statement at a time, in bench_torch.py's order: nn::Sequential(a, b, ...) would
// evaluate its arguments right to left in g++ and change the initialization.
void conv_bn(nn::Sequential& m, int64_t in, int64_t out, int64_t k, int64_t stride, int64_t groups,
             bool bias) {
  m->push_back(
      nn::Conv2d(nn::Conv2dOptions(in, out, k).stride(stride).padding(k / 2).groups(groups).bias(bias)));
  m->push_back(nn::BatchNorm2d(out));
}

void classifier(nn::Sequential& m, int64_t features) {
  m->push_back(nn::AdaptiveAvgPool2d(nn::AdaptiveAvgPool2dOptions(1)));
  m->push_back(nn::Flatten());
  m->push_back(nn::Linear(features, 10));
}

nn::Sequential lenet() {
  nn::Sequential m;
  m->push_back(nn::Conv2d(nn::Conv2dOptions(1, 6, 5).padding(2)));
  m->push_back(nn::ReLU());
  m->push_back(nn::MaxPool2d(2));
  m->push_back(nn::Conv2d(nn::Conv2dOptions(6, 16, 5)));
  m->push_back(nn::ReLU());
  m->push_back(nn::MaxPool2d(2));
  m->push_back(nn::Flatten());
  m->push_back(nn::Linear(400, 120));
  m->push_back(nn::ReLU());
  m->push_back(nn::Linear(120, 84));
  m->push_back(nn::ReLU());
  m->push_back(nn::Linear(84, 10));
  return m;
}

nn::Sequential convnet() {
  nn::Sequential m;
  m->push_back(nn::Conv2d(nn::Conv2dOptions(1, 32, 3)));
  m->push_back(nn::ReLU());
  m->push_back(nn::Conv2d(nn::Conv2dOptions(32, 64, 3)));
  m->push_back(nn::ReLU());
  m->push_back(nn::MaxPool2d(2));
  m->push_back(nn::Flatten());
  m->push_back(nn::Linear(9216, 128));
  m->push_back(nn::ReLU());
  m->push_back(nn::Linear(128, 10));
  return m;
}

nn::Sequential cifarnet() {
  nn::Sequential m;
  const std::tuple<int64_t, int64_t, bool> convs[] = {{3, 32, false},
                                                      {32, 32, true},
                                                      {32, 64, false},
                                                      {64, 64, true},
                                                      {64, 128, false}};  // in, out, then pool
  for (const auto& [in, out, pool] : convs) {
    conv_bn(m, in, out, 3, 1, 1, true);
    m->push_back(nn::ReLU());
    if (pool) m->push_back(nn::MaxPool2d(2));
  }
  classifier(m, 128);
  return m;
}

nn::Sequential mobilenet() {
  nn::Sequential m;
  conv_bn(m, 3, 32, 3, 1, 1, true);
  m->push_back(nn::ReLU());
  int64_t c = 32;
  for (int block = 0; block < 4; ++block) {
    conv_bn(m, c, c, 3, block % 2 == 1 ? 2 : 1, c, true);  // depthwise; stride 2 in the 2nd and 4th
    m->push_back(nn::ReLU());
    conv_bn(m, c, 2 * c, 1, 1, 1, true);  // pointwise
    m->push_back(nn::ReLU());
    c *= 2;
  }
  classifier(m, c);
  return m;
}

// apps/models/resnet20.tg: 3 stages of 3 basic blocks (16, 32, 64 channels); the first block of stages 2 and
// 3 halves the size and has a 1x1 projection shortcut.
nn::Sequential resnet20() {
  nn::Sequential m;
  conv_bn(m, 3, 16, 3, 1, 1, false);
  m->push_back(nn::ReLU());
  int64_t c = 16;
  for (const int64_t out : {16, 32, 64}) {
    for (int block = 0; block < 3; ++block) {
      const int64_t stride = out != c ? 2 : 1;
      nn::Sequential body, shortcut{nullptr};
      conv_bn(body, c, out, 3, stride, 1, false);
      body->push_back(nn::ReLU());
      conv_bn(body, out, out, 3, 1, 1, false);
      if (stride != 1) {
        shortcut = nn::Sequential();
        conv_bn(shortcut, c, out, 1, stride, 1, false);
      }
      m->push_back(Residual(body, shortcut));
      m->push_back(nn::ReLU());
      c = out;
    }
  }
  classifier(m, c);
  return m;
}

// apps/models/mobilenetv2.tg: inverted residual blocks (expansion t, output channels, blocks n, first stride
// s) at width 0.5, a stride-1 first conv; the identity where the stride is 1 and the channels match.
nn::Sequential mobilenetv2() {
  nn::Sequential m;
  conv_bn(m, 3, 16, 3, 1, 1, false);
  m->push_back(nn::ReLU6());
  int64_t c = 16;
  const std::tuple<int64_t, int64_t, int, int64_t> stages[] = {{1, 8, 1, 1},  {6, 16, 2, 2}, {6, 16, 3, 2},
                                                               {6, 32, 4, 2}, {6, 48, 3, 1}, {6, 80, 3, 2},
                                                               {6, 160, 1, 1}};  // t, out, n, s
  for (const auto& [t, out, n, s] : stages) {
    for (int i = 0; i < n; ++i) {
      const int64_t stride = i == 0 ? s : 1, hidden = c * t;
      const bool identity = stride == 1 && c == out;
      // a block with the identity is a Residual's body; one without is written into the model itself
      nn::Sequential block = identity ? nn::Sequential() : m;
      if (t != 1) {
        conv_bn(block, c, hidden, 1, 1, 1, false);
        block->push_back(nn::ReLU6());
      }
      conv_bn(block, hidden, hidden, 3, stride, hidden, false);
      block->push_back(nn::ReLU6());
      conv_bn(block, hidden, out, 1, 1, 1, false);  // the linear bottleneck: no activation
      if (identity) m->push_back(Residual(block));
      c = out;
    }
  }
  conv_bn(m, c, 1280, 1, 1, 1, false);
  m->push_back(nn::ReLU6());
  classifier(m, 1280);
  return m;
}

}  // namespace

const std::vector<std::string>& model_names() {
  static const std::vector<std::string> names = {"lenet",     "convnet",  "cifarnet",
                                                 "mobilenet", "resnet20", "mobilenetv2"};
  return names;
}

bool random_data_model(const std::string& name) { return name != "lenet" && name != "convnet"; }

nn::Sequential make_model(const std::string& name) {
  if (name == "lenet") return lenet();
  if (name == "convnet") return convnet();
  if (name == "cifarnet") return cifarnet();
  if (name == "mobilenet") return mobilenet();
  if (name == "resnet20") return resnet20();
  if (name == "mobilenetv2") return mobilenetv2();
  std::fprintf(stderr, "bench_libtorch: no model %s\n", name.c_str());
  std::exit(2);
}

}  // namespace bench
