#!/usr/bin/env python3
"""PyTorch reference fixtures for tapegrad's SGD and its safetensors checkpoints.

Regenerate with:

    /usr/bin/python3 tests/gen_fixtures_train.py

(from the repository root). It writes, all checked in:

  tests/fixtures/sgd_trajectories.json   20 steps of torch.optim.SGD on a linear layer with an MSE loss,
                                         for six option sets: W and b after every step, and each step's loss.
  tests/fixtures/lenet_torch.safetensors the state_dict of a LeNet nn.Sequential (torch.manual_seed(0),
                                         default init), keys "0.weight" ... "11.bias" in state_dict order.
  tests/fixtures/lenet_torch.json        a [4, 1, 28, 28] input normalized like MNIST, the model's logits,
                                         4 labels, F.cross_entropy and every parameter's grad, by name.

The C++ tests (tests/optim/test_sgd.cpp, tests/layers/test_checkpoint.cpp) only read these files and never need torch.
Deterministic: torch.manual_seed(0) before each fixture, float32 throughout.

There is no `safetensors` package here, so the format is written and read by hand: an 8-byte little-endian
header length N, N bytes of JSON {"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]},
..., "__metadata__": {...}}, then the raw little-endian data (offsets relative to the end of the header).

    /usr/bin/python3 tests/gen_fixtures_train.py --check FILE

loads a safetensors file written by tapegrad (tg::save) into the same nn.Sequential with strict=True and
prints its logits on the fixture input, next to the fixture's logits: "a file tapegrad wrote loads into
PyTorch".
"""

import argparse
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE_DIR = os.path.join(HERE, "fixtures")
SGD_PATH = os.path.join(FIXTURE_DIR, "sgd_trajectories.json")
LENET_WEIGHTS_PATH = os.path.join(FIXTURE_DIR, "lenet_torch.safetensors")
LENET_JSON_PATH = os.path.join(FIXTURE_DIR, "lenet_torch.json")

SGD_STEPS = 20
# name -> torch.optim.SGD keyword arguments (unnamed ones take PyTorch's defaults: 0 / False).
SGD_CONFIGS = [
    ("plain_lr0.1", dict(lr=0.1, momentum=0.0)),
    ("momentum0.9_lr0.05", dict(lr=0.05, momentum=0.9)),
    ("nesterov_momentum0.9_lr0.05", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("momentum0.9_dampening0.5_lr0.05", dict(lr=0.05, momentum=0.9, dampening=0.5)),
    ("momentum0.9_weight_decay0.01_lr0.1", dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
    ("plain_weight_decay0.05_lr0.1", dict(lr=0.1, momentum=0.0, weight_decay=0.05)),
]

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


def encode(t):
    """A tensor as {"shape": [...], "data": [...]} with float32-exact floats."""
    a = t.detach().cpu().numpy().astype(np.float32)
    return {"shape": list(a.shape), "data": [float(np.float32(v)) for v in a.reshape(-1)]}


def write_json(path, doc):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {path}: {os.path.getsize(path)} bytes")


# ---- safetensors, by hand --------------------------------------------------------------------------


def write_safetensors(path, tensors, metadata=None):
    """Writes an ordered {name: float32 tensor} dict in the safetensors format."""
    header = {}
    blobs = []
    offset = 0
    for name, t in tensors.items():
        a = np.ascontiguousarray(t.detach().cpu().numpy().astype("<f4"))
        raw = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    header_bytes += b" " * (-len(header_bytes) % 8)  # pad so the data starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header_bytes)))
        f.write(header_bytes)
        for raw in blobs:
            f.write(raw)
    print(f"wrote {path}: {os.path.getsize(path)} bytes")


def read_safetensors(path):
    """Reads a safetensors file: ({name: torch tensor} in header order, metadata dict). F32 only."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError(f"{path}: {len(blob)} bytes, too short for a safetensors header length")
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        raise ValueError(f"{path}: header length {n} runs past the end of the file ({len(blob)} bytes)")
    header = json.loads(blob[8 : 8 + n].decode("utf-8"))
    data = blob[8 + n :]
    metadata = header.pop("__metadata__", {})
    tensors = {}
    for name, info in header.items():
        if info["dtype"] != "F32":
            raise ValueError(f"{path}: tensor {name!r} has dtype {info['dtype']}, only F32 is supported")
        begin, end = info["data_offsets"]
        shape = tuple(info["shape"])
        count = int(np.prod(shape)) if shape else 1
        if not (0 <= begin <= end <= len(data)) or end - begin != 4 * count:
            raise ValueError(f"{path}: tensor {name!r}: offsets [{begin}, {end}] do not fit shape {list(shape)}"
                             f" in {len(data)} data bytes")
        a = np.frombuffer(data[begin:end], dtype="<f4").reshape(shape).astype(np.float32)
        tensors[name] = torch.from_numpy(a.copy())
    return tensors, metadata


def load_tapegrad_checkpoint(path):
    """A safetensors file written by tapegrad's tg::save, as a PyTorch state_dict of float32 tensors."""
    tensors, _ = read_safetensors(path)
    return tensors


# ---- SGD trajectories ------------------------------------------------------------------------------


def sgd_trajectory(W0, b0, X, Y, kwargs):
    W = W0.clone().requires_grad_(True)
    b = b0.clone().requires_grad_(True)
    opt = torch.optim.SGD([W, b], **kwargs)
    steps = []
    for _ in range(SGD_STEPS):
        opt.zero_grad()
        loss = F.mse_loss(F.linear(X, W, b), Y)
        loss.backward()
        opt.step()
        steps.append({"loss": float(np.float32(loss.item())), "W": encode(W), "b": encode(b)})
    return steps


def build_sgd_fixture():
    torch.manual_seed(0)
    W0 = torch.randn(3, 4, dtype=torch.float32) * 0.5
    b0 = torch.randn(3, dtype=torch.float32) * 0.5
    X = torch.randn(5, 4, dtype=torch.float32)
    Y = torch.randn(5, 3, dtype=torch.float32)
    configs = []
    for name, kwargs in SGD_CONFIGS:
        options = {"lr": kwargs["lr"], "momentum": kwargs.get("momentum", 0.0),
                   "dampening": kwargs.get("dampening", 0.0), "weight_decay": kwargs.get("weight_decay", 0.0),
                   "nesterov": kwargs.get("nesterov", False)}
        steps = sgd_trajectory(W0, b0, X, Y, kwargs)
        for s in steps:
            assert np.isfinite(s["loss"]) and all(np.isfinite(s["W"]["data"])), f"non-finite in {name}"
        configs.append({"name": name, "options": options, "steps": steps})
    return {"generator": "tests/gen_fixtures_train.py", "torch_version": torch.__version__,
            "loss": "F.mse_loss(F.linear(X, W, b), Y)", "num_steps": SGD_STEPS,
            "W0": encode(W0), "b0": encode(b0), "X": encode(X), "Y": encode(Y), "configs": configs}


# ---- LeNet -----------------------------------------------------------------------------------------


def lenet():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10))


def lenet_input():
    """The fixture's input, [4, 1, 28, 28], normalized like MNIST; and its labels."""
    torch.manual_seed(1)
    x = (torch.rand(4, 1, 28, 28, dtype=torch.float32) - MNIST_MEAN) / MNIST_STD
    labels = torch.tensor([3, 7, 0, 9], dtype=torch.long)
    return x, labels


def build_lenet_fixture():
    torch.manual_seed(0)
    model = lenet()
    state = model.state_dict()
    x, labels = lenet_input()
    logits = model(x)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    grads = {name: encode(p.grad) for name, p in model.named_parameters()}
    assert list(grads) == list(state), "named_parameters and state_dict disagree on order"
    doc = {"generator": "tests/gen_fixtures_train.py", "torch_version": torch.__version__,
           "weights": "lenet_torch.safetensors", "parameter_names": list(state),
           "input": encode(x), "labels": labels.tolist(), "logits": encode(logits),
           "loss": float(np.float32(loss.item())), "grads": grads}
    return state, doc


def check(path):
    """Loads a tapegrad checkpoint into the LeNet nn.Sequential (strict) and prints its logits."""
    state = load_tapegrad_checkpoint(path)
    model = lenet()
    model.load_state_dict(state, strict=True)
    with open(LENET_JSON_PATH) as f:
        doc = json.load(f)
    x = torch.tensor(doc["input"]["data"], dtype=torch.float32).reshape(doc["input"]["shape"])
    with torch.no_grad():
        logits = model(x)
    fixture_logits = torch.tensor(doc["logits"]["data"], dtype=torch.float32).reshape(doc["logits"]["shape"])
    np.set_printoptions(precision=6, suppress=True, linewidth=140)
    print(f"loaded {path} into nn.Sequential LeNet (strict=True): {len(state)} tensors, keys {list(state)}")
    print("logits on the fixture input:")
    print(logits.numpy())
    diff = (logits - fixture_logits).abs().max().item()
    print(f"max |logits - lenet_torch.json logits| = {diff:.3g}"
          " (0 only if the file holds the fixture's weights, e.g. a round trip of lenet_torch.safetensors)")
    print(f"cross_entropy on the fixture labels: {F.cross_entropy(logits, torch.tensor(doc['labels'])).item():.6f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", metavar="FILE", help="load a tapegrad safetensors file into PyTorch and print logits")
    args = parser.parse_args()
    if args.check:
        check(args.check)
        return 0

    write_json(SGD_PATH, build_sgd_fixture())
    state, doc = build_lenet_fixture()
    write_safetensors(LENET_WEIGHTS_PATH, state, metadata={"format": "pt", "generator": "tests/gen_fixtures_train.py"})
    write_json(LENET_JSON_PATH, doc)
    # The reader must give back exactly what was written.
    back = load_tapegrad_checkpoint(LENET_WEIGHTS_PATH)
    assert list(back) == list(state) and all(torch.equal(back[k], state[k]) for k in state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
