#!/usr/bin/env python3
"""PyTorch 1.13 twins of the built-in 3x32x32 models (apps/models/cifarnet.tg, mobilenet.tg).

Regenerate with (from the repository root):

    /usr/bin/python3 tests/gen_fixtures_models.py

It writes tests/fixtures/models_torch.json, checked in; tests/apps/test_builtin_models.cpp reads it and never
needs torch. The twin nn.Sequential of each model file is built by tests/gen_fixtures_cli.py's
build_sequential, line by line, for input [3, 32, 32] and 10 classes.

For each model: the parameter count and the state_dict keys and shapes (parameters and buffers, in order).

For cifarnet, a whole training run in miniature: every parameter set by a formula both sides compute the same
way (in double, rounded to float32; see `fill` below; buffers keep their initial zeros and ones), a batch of 8
formula images with labels i % 10, train mode (batch norm on batch statistics), cross-entropy:
  - step 0: the logits, the loss, and each parameter's gradient;
  - then 5 AdamW steps (lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay 1e-2), each on the image batch
    shifted by the step number: the loss at each step, and afterwards each parameter and buffer.
    The biases of convolutions that feed a batch norm stay out of the optimizer ("frozen"): batch norm
    subtracts the mean they add, so their gradient is 0 up to rounding (~1e-9), and Adam, which divides by
    the gradient's own size, would step them by +-lr in the direction of that rounding noise, which no two
    implementations share.
A tensor of more than 64 values is recorded as 64 samples (every numel/64-th value, from index 0) plus its sum
and its sum of absolute values (in double), which keeps the file small and still sees every element.
"""

import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from gen_fixtures_cli import build_sequential  # noqa: E402
from gen_fixtures_train import write_json  # noqa: E402

OUT_PATH = os.path.join(HERE, "fixtures", "models_torch.json")
MODELS = ("cifarnet", "mobilenet")
BATCH, STEPS = 8, 5
ADAMW = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 1e-2}


def fill(numel, index, scale, offset=0.0):
    """value[i] = offset + scale * sin(0.7 i + 1.3 index + 0.1), in double, rounded to float32."""
    i = np.arange(numel, dtype=np.float64)
    return (offset + scale * np.sin(0.7 * i + 1.3 * index + 0.1)).astype(np.float32)


def set_parameters(model):
    """Weights scaled by 1/sqrt(fan_in), biases by 0.1, batch norm weights 1 + 0.1 sin(...)."""
    for index, (name, p) in enumerate(model.named_parameters()):
        module = model[int(name.split(".")[0])]
        if isinstance(module, torch.nn.BatchNorm2d):
            values = fill(p.numel(), index, 0.1, 1.0 if name.endswith("weight") else 0.0)
        elif name.endswith("weight"):
            values = fill(p.numel(), index, 1.0 / math.sqrt(p[0].numel()))
        else:
            values = fill(p.numel(), index, 0.1)
        with torch.no_grad():
            p.copy_(torch.from_numpy(values).reshape(p.shape))


def images(step):
    """[8, 3, 32, 32]: x[i] = 1.5 sin(0.011 i + 0.5 step) + 0.25 cos(0.37 i), in double, rounded to float32."""
    i = np.arange(BATCH * 3 * 32 * 32, dtype=np.float64)
    x = 1.5 * np.sin(0.011 * i + 0.5 * step) + 0.25 * np.cos(0.37 * i)
    return torch.from_numpy(x.astype(np.float32)).reshape(BATCH, 3, 32, 32)


def frozen_biases(model):
    """The names of the biases of convolutions followed by a batch norm."""
    return [f"{i}.bias" for i in range(len(model) - 1)
            if isinstance(model[i], torch.nn.Conv2d) and model[i].bias is not None
            and isinstance(model[i + 1], torch.nn.BatchNorm2d)]


LABELS = torch.tensor([i % 10 for i in range(BATCH)])


def summary(t):
    a = t.detach().reshape(-1).numpy().astype(np.float32)
    if a.size <= 64:
        return {"shape": list(t.shape), "data": [float(v) for v in a]}
    stride = a.size // 64
    return {"shape": list(t.shape), "stride": stride, "samples": [float(a[k * stride]) for k in range(64)],
            "sum": float(a.astype(np.float64).sum()), "abs_sum": float(np.abs(a.astype(np.float64)).sum())}


def model_text(name):
    with open(os.path.join(ROOT, "apps", "models", name + ".tg")) as f:
        return f.read()


def main():
    torch.manual_seed(0)
    doc = {"generator": "tests/gen_fixtures_models.py", "torch_version": torch.__version__, "models": {}}
    for name in MODELS:
        model = build_sequential(model_text(name), [3, 32, 32], 10, name + ".tg")
        doc["models"][name] = {
            "parameters": sum(p.numel() for p in model.parameters()),
            "state": [[k, list(v.shape)] for k, v in model.state_dict().items()],
        }

    model = build_sequential(model_text("cifarnet"), [3, 32, 32], 10, "cifarnet.tg")
    set_parameters(model)
    model.train()
    logits = model(images(0))
    loss = F.cross_entropy(logits, LABELS)
    loss.backward()
    run = {"batch": BATCH, "adamw": {**ADAMW, "betas": list(ADAMW["betas"])}, "logits": summary(logits),
           "loss": float(loss), "grads": {n: summary(p.grad) for n, p in model.named_parameters()}}

    model = build_sequential(model_text("cifarnet"), [3, 32, 32], 10, "cifarnet.tg")
    set_parameters(model)
    model.train()
    frozen = frozen_biases(model)
    opt = torch.optim.AdamW([p for n, p in model.named_parameters() if n not in frozen], **ADAMW)
    losses = []
    for step in range(STEPS):
        opt.zero_grad()
        loss = F.cross_entropy(model(images(step)), LABELS)
        loss.backward()
        opt.step()
        losses.append(float(loss))
    run["adamw_losses"] = losses
    run["frozen"] = frozen
    run["after_adamw"] = {k: summary(v.float()) for k, v in model.state_dict().items()}
    doc["cifarnet_run"] = run
    write_json(OUT_PATH, doc)


if __name__ == "__main__":
    main()
