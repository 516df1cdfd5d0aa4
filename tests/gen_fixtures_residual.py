#!/usr/bin/env python3
"""PyTorch 1.13 references for residual networks and relu6: tg::Residual, model-file blocks, apps/models/resnet20.tg.

Regenerate with (from the repository root):

    /usr/bin/python3 tests/gen_fixtures_residual.py

It writes, checked in (the C++ tests only read the JSON and never need torch):
  - tests/fixtures/residual_torch.json: a small residual net (an identity block and a block with a projection
    shortcut) written as a model file, with every parameter and buffer, an input batch, labels, and from
    torch in train mode: the logits, the cross-entropy loss, the gradient of the loss with respect to every
    parameter and the input, and the buffers after the forward (batch norm running statistics); for
    apps/models/resnet20.tg and mobilenetv2.tg at [1, 28, 28] and [3, 32, 32] (10 classes), the parameter
    count and the state_dict keys and shapes of their PyTorch twins, built with the Residual class of
    docs/model-files.md; and for each of the two at [3, 32, 32], a training run in miniature ("runs", below);
  - the relu6 cases of tests/fixtures/extra_ops.json (the case format of gen_fixtures.py), replacing the
    file's relu6 cases and keeping every other case as it is.
The twin of a model file is built by `build`, below, which reads the block grammar (residual / shortcut /
end, repeat N / end, the `in` token) as tapegrad does. Deterministic: torch.manual_seed(0), float32.

A run ("runs": resnet20, mobilenetv2) is the cifarnet run of gen_fixtures_models.py, smaller: every parameter
set from an integer hash the C++ test computes the same way (hashed_uniform: u in [-1, 1), in double rounded to
float32; a weight of more than one dimension u sqrt(3 / fan_in), a one-dimensional weight, batch norm's,
1 + 0.1 u, a bias 0.1 u; buffers keep their zeros and ones), a batch of 2 formula images (as
gen_fixtures_models.images) with labels 3 and 8, train mode, cross-entropy: the logits, the loss and each
parameter's gradient at step 0 (and the names of those that are 0 up to rounding: zero_gradients), then SGD
steps (lr 0.01, momentum 0.9, weight decay 5e-4), each on the batch shifted by the step number: the loss at each
step and afterwards every parameter and buffer. resnet20 takes 3 steps; mobilenetv2 one, after which its
losses are chaotic: from this start its loss is so sharp (17 blocks of batch norms on a batch of 2) that
PyTorch's own float32 and float64 runs of this fixture differ by 0.1% at the second step's loss and by 10% at
the third at lr 1e-4, and still by 0.06% at lr 1e-6; one step is linear in the gradients, which are well
conditioned (float32 and float64 agree to 1e-6). A tensor of more than 4 values is recorded as 4 samples
(every numel/4-th value, from index 0) plus its sum and its sum of absolute values (in double): the C++ test
recomputes those, which sees every element and keeps the file small.
"""

import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from gen_fixtures import encode, make_case, randn  # noqa: E402  same encoding and case format

OUT_PATH = os.path.join(HERE, "fixtures", "residual_torch.json")
EXTRA_OPS_PATH = os.path.join(HERE, "fixtures", "extra_ops.json")
MODELS_DIR = os.path.join(ROOT, "apps", "models")
RUN_BATCH, RUN_LABELS, RUN_SAMPLES = 2, [3, 8], 4
RUN_STEPS = {"resnet20": 3, "mobilenetv2": 1}  # why mobilenetv2 takes one step: the module docstring
# The gradients' tolerance, relative to each tensor's mean absolute value: cifarnet's 2e-3, but 5e-3 for
# mobilenetv2, where PyTorch's own float32 gradient of 36.body.1.weight (a batch norm weight: a sum that cancels)
# is 2.05e-3 from its float64 one.
RUN_GRAD_RTOL = {"resnet20": 2e-3, "mobilenetv2": 5e-3}
RUN_SGD = {"lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4}


class Residual(nn.Module):
    """The documented Residual: body(x) + (x if shortcut is None else shortcut(x))."""

    def __init__(self, body, shortcut=None):
        super().__init__()
        self.body = body
        self.shortcut = shortcut

    def forward(self, x):
        return self.body(x) + (x if self.shortcut is None else self.shortcut(x))


class GlobalAvgPool2d(nn.Module):
    """[N, C, H, W] -> [N, C], no state (tg::GlobalAvgPool2D)."""

    def forward(self, x):
        return x.mean(dim=(2, 3))


def parse_size(text):
    return tuple(int(v) for v in text.split("x")) if "x" in text else (int(text), int(text))


def out_size(n, kernel, stride, padding, dilation=1):
    return (n + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def channels(word, shape, classes):
    """A channel count: a number, 'classes', 'in' or 'K*in'."""
    if word == "classes":
        return classes
    if word == "in":
        return shape[0]
    if word.endswith("*in"):
        return int(word[:-3]) * shape[0]
    return int(word)


def parse_lines(text):
    """(number, words) per non-empty line, comments dropped."""
    out = []
    for number, raw in enumerate(text.splitlines(), start=1):
        words = raw.split("#", 1)[0].split()
        if words:
            out.append((number, words))
    return out


def build_layer(words, shape, classes):
    """One layer line -> (module, output shape)."""
    name, positional, options = words[0], [], {}
    for w in words[1:]:
        if "=" in w:
            k, v = w.split("=", 1)
            options[k] = v
        else:
            positional.append(w)
    if name == "conv2d":
        out, kernel = channels(positional[0], shape, classes), parse_size(positional[1])
        stride = parse_size(options.get("stride", "1"))
        padding = parse_size(options.get("padding", "0"))
        groups = channels(options.get("groups", "1"), shape, classes)
        bias = options.get("bias", "true") == "true"
        module = nn.Conv2d(shape[0], out, kernel, stride=stride, padding=padding, groups=groups, bias=bias)
        return module, [out] + [out_size(shape[1 + i], kernel[i], stride[i], padding[i]) for i in range(2)]
    if name == "batchnorm2d":
        return nn.BatchNorm2d(shape[0]), shape
    if name in ("maxpool2d", "avgpool2d"):
        kernel = parse_size(positional[0])
        stride = parse_size(options["stride"]) if "stride" in options else kernel
        padding = parse_size(options.get("padding", "0"))
        cls = nn.MaxPool2d if name == "maxpool2d" else nn.AvgPool2d
        return cls(kernel, stride=stride, padding=padding), [shape[0]] + [
            out_size(shape[1 + i], kernel[i], stride[i], padding[i]) for i in range(2)]
    if name == "globalavgpool2d":
        return GlobalAvgPool2d(), [shape[0]]
    if name == "flatten":
        return nn.Flatten(), [int(np.prod(shape))]
    if name == "linear":
        out = channels(positional[0], shape, classes)
        return nn.Linear(shape[0], out, bias=options.get("bias", "true") == "true"), [out]
    simple = {"relu": nn.ReLU, "relu6": nn.ReLU6, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}
    if name in simple:
        return simple[name](), shape
    raise ValueError(f"layer '{name}' is not known to this generator")


def build_block(lines, pos, shape, classes, stop):
    """Modules from lines[pos:] up to a word in `stop` (not consumed); returns (modules, shape, pos)."""
    modules = []
    while pos < len(lines):
        number, words = lines[pos]
        if words[0] in stop:
            return modules, shape, pos
        if words[0] == "repeat":
            start = pos + 1
            for _ in range(int(words[1])):
                inner, shape, pos = build_block(lines, start, shape, classes, ("end",))
                modules += inner
            pos += 1  # the 'end'
        elif words[0] == "residual":
            body, body_shape, pos = build_block(lines, pos + 1, shape, classes, ("shortcut", "end"))
            shortcut = None
            if lines[pos][1][0] == "shortcut":
                sc, sc_shape, pos = build_block(lines, pos + 1, shape, classes, ("end",))
                shortcut = nn.Sequential(*sc)
                assert sc_shape == body_shape, (number, sc_shape, body_shape)
            else:
                assert body_shape == shape, (number, body_shape, shape)
            modules.append(Residual(nn.Sequential(*body), shortcut))
            shape = body_shape
            pos += 1  # the 'end'
        else:
            module, shape = build_layer(words, shape, classes)
            modules.append(module)
            pos += 1
    return modules, shape, pos


def build(text, input_shape, classes):
    """The twin nn.Sequential of a model file with blocks, for a per-example input [C, H, W]."""
    modules, shape, _ = build_block(parse_lines(text), 0, list(input_shape), classes, ())
    assert shape == [classes], shape
    return nn.Sequential(*modules)


SMALL_NET = """\
# a stem, an identity block, relu6, a downsampling block with a projection shortcut, a head
conv2d 4 3 padding=1
relu
residual
  conv2d in 3 padding=1 bias=false
  batchnorm2d
  relu
  conv2d in 3 padding=1 bias=false
  batchnorm2d
end
relu6
residual
  conv2d 8 3 stride=2 padding=1 bias=false
  batchnorm2d
  relu6
  conv2d in 3 padding=1
shortcut
  conv2d 2*in 1 stride=2 bias=false
  batchnorm2d
end
globalavgpool2d
linear classes
"""


def small_net_fixture():
    input_shape, classes = [3, 6, 6], 3
    model = build(SMALL_NET, input_shape, classes)
    with torch.no_grad():  # batch norm affine parameters away from their 1 / 0 defaults
        for name, p in model.named_parameters():
            if ".body.1." in name or ".shortcut.1." in name or ".body.4." in name:
                p.copy_(1.0 + 0.2 * randn(*p.shape) if name.endswith("weight") else 0.1 * randn(*p.shape))
    model.train()
    state = {k: encode(v.float()) for k, v in model.state_dict().items()}
    x = randn(2, *input_shape).requires_grad_(True)
    labels = [0, 2]
    logits = model(x)
    loss = F.cross_entropy(logits, torch.tensor(labels))
    loss.backward()
    return {
        "model_text": SMALL_NET, "input_shape": input_shape, "classes": classes,
        "state": state, "state_keys": list(state.keys()),
        "input": encode(x), "labels": labels, "logits": encode(logits), "loss": float(loss),
        "grads": {k: encode(p.grad) for k, p in model.named_parameters()},
        "input_grad": encode(x.grad),
        "buffers_after": {k: encode(v.float()) for k, v in model.named_buffers()},
    }


def twin_summary(text, input_shape, classes):
    model = build(text, input_shape, classes)
    return {"input_shape": input_shape, "classes": classes,
            "parameters": sum(p.numel() for p in model.parameters()),
            "state": [[k, list(v.shape)] for k, v in model.state_dict().items()]}


def run_summary(t):
    """A tensor as up to RUN_SAMPLES values, or RUN_SAMPLES samples plus its sum and sum of absolute values."""
    a = t.detach().reshape(-1).numpy().astype(np.float32)
    short = lambda v: float(f"{v:.9g}")  # float32's 9 digits, not Python's 17
    if a.size <= RUN_SAMPLES:
        return {"shape": list(t.shape), "data": [short(v) for v in a]}
    stride = a.size // RUN_SAMPLES
    return {"shape": list(t.shape), "stride": stride, "samples": [short(a[k * stride]) for k in range(RUN_SAMPLES)],
            "sum": float(f"{a.astype(np.float64).sum():.12g}"),
            "abs_sum": float(f"{np.abs(a.astype(np.float64)).sum():.12g}")}


def hashed_uniform(numel, index):
    """numel values in [-1, 1) from an integer hash of (i, index): exact in any language, unlike a random
    generator's, and unlike gen_fixtures_models.fill's sine not of rank 2 as a matrix (a deep stack of rank-2
    1x1 convolutions and batch norms blows its gradients up by 1e4)."""
    i = np.arange(numel, dtype=np.uint64)
    h = (i * np.uint64(2654435761) + np.uint64(index + 1) * np.uint64(2246822519)) & np.uint64(0xFFFFFFFF)
    h ^= h >> np.uint64(15)
    h = (h * np.uint64(2246822519)) & np.uint64(0xFFFFFFFF)
    h ^= h >> np.uint64(13)
    return h.astype(np.float64) / 2.0**31 - 1.0


def set_run_parameters(model):
    """The parameters of a run (module docstring), in named_parameters order."""
    for index, (name, p) in enumerate(model.named_parameters()):
        u = hashed_uniform(p.numel(), index)
        if name.endswith("weight") and p.dim() > 1:
            values = u * math.sqrt(3.0 / p[0].numel())
        elif name.endswith("weight"):
            values = 1.0 + 0.1 * u
        else:
            values = 0.1 * u
        with torch.no_grad():
            p.copy_(torch.from_numpy(values.astype(np.float32)).reshape(p.shape))


def run_images(step):
    """[2, 3, 32, 32]: x[i] = 1.5 sin(0.011 i + 0.5 step) + 0.25 cos(0.37 i), in double, rounded to float32."""
    i = np.arange(RUN_BATCH * 3 * 32 * 32, dtype=np.float64)
    x = 1.5 * np.sin(0.011 * i + 0.5 * step) + 0.25 * np.cos(0.37 * i)
    return torch.from_numpy(x.astype(np.float32)).reshape(RUN_BATCH, 3, 32, 32)


def zero_gradients(text):
    """The parameters whose gradient is 0 in exact arithmetic (float64 shows it: below 1e-10 of the largest): a
    batch norm's bias whose every path goes through a convolution and another batch norm, which subtracts the
    mean it adds. In float32 their gradient is rounding noise, which no two implementations share."""
    model = build(text, [3, 32, 32], 10)
    set_run_parameters(model)
    model.double().train()
    F.cross_entropy(model(run_images(0).double()), torch.tensor(RUN_LABELS)).backward()
    largest = max(float(p.grad.abs().max()) for p in model.parameters())
    return [n for n, p in model.named_parameters() if float(p.grad.abs().max()) < 1e-10 * largest]


def training_run(text, steps, grad_rtol):
    """A forward, a backward, then `steps` SGD steps of the model file's twin (module docstring)."""
    labels = torch.tensor(RUN_LABELS)
    model = build(text, [3, 32, 32], 10)
    set_run_parameters(model)
    model.train()
    logits = model(run_images(0))
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    run = {"batch": RUN_BATCH, "labels": RUN_LABELS, "sgd": RUN_SGD, "logits": run_summary(logits),
           "loss": float(loss), "grads": {n: run_summary(p.grad) for n, p in model.named_parameters()},
           "zero_grads": zero_gradients(text), "grad_rtol": grad_rtol}
    model = build(text, [3, 32, 32], 10)
    set_run_parameters(model)
    model.train()
    opt = torch.optim.SGD(model.parameters(), **RUN_SGD)
    losses = []
    for step in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(run_images(step)), labels)
        loss.backward()
        opt.step()
        losses.append(float(loss))
    run["sgd_losses"] = losses
    run["after_sgd"] = {k: run_summary(v.float()) for k, v in model.state_dict().items()}
    return run


def relu6_cases():
    x = randn(3, 5) * 4.0 + 2.0  # values below 0, between 0 and 6, above 6
    x = torch.where((x.abs() < 0.05) | ((x - 6).abs() < 0.05), x + 0.2, x)
    kinks = torch.tensor([[-1.0, 0.0, 3.0, 6.0, 7.5, 0.0, 6.0, 2.5]])
    return [make_case("relu6_3x5", "relu6", [x], F.relu6),
            make_case("relu6_at_the_kinks", "relu6", [kinks], F.relu6)]


def main():
    torch.manual_seed(0)
    doc = {"generator": "tests/gen_fixtures_residual.py", "torch_version": torch.__version__,
           "small_net": small_net_fixture(), "runs": {}}
    texts = {}
    for name in ("resnet20", "mobilenetv2"):
        with open(os.path.join(MODELS_DIR, name + ".tg")) as f:
            texts[name] = f.read()
    doc["resnet20"] = [twin_summary(texts["resnet20"], [1, 28, 28], 10),
                       twin_summary(texts["resnet20"], [3, 32, 32], 10)]
    relu6 = relu6_cases()  # drawn here, where the generator has always drawn them: the same cases as before
    doc["mobilenetv2"] = [twin_summary(texts["mobilenetv2"], [1, 28, 28], 10),
                          twin_summary(texts["mobilenetv2"], [3, 32, 32], 10)]
    for name, text in texts.items():
        for twin in doc[name]:
            print(f"{name} at {twin['input_shape']}: {twin['parameters']} parameters")
        doc["runs"][name] = training_run(text, RUN_STEPS[name], RUN_GRAD_RTOL[name])
        print(f"{name}: loss {doc['runs'][name]['loss']:.6f}, SGD losses {doc['runs'][name]['sgd_losses']}")
    with open(OUT_PATH, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {OUT_PATH}: {os.path.getsize(OUT_PATH)} bytes")

    with open(EXTRA_OPS_PATH) as f:
        extra = json.load(f)
    extra["cases"] = [c for c in extra["cases"] if c["op"] != "relu6"] + relu6
    with open(EXTRA_OPS_PATH, "w") as f:
        json.dump(extra, f, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"wrote the relu6 cases into {EXTRA_OPS_PATH}")


if __name__ == "__main__":
    main()
