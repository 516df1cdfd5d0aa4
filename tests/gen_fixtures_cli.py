#!/usr/bin/env python3
"""PyTorch loads a checkpoint written by `tapegrad train` with load_state_dict(strict=True).

The fixtures, all checked in (tests/apps/test_cli_checkpoint.cpp and test_cli_checkpoint_residual.cpp read
them and never need torch), two per model file written by hand:

  tests/fixtures/cli/small.tg           a small model file (conv2d, maxpool2d, linear)
  tests/fixtures/cli/small_residual.tg  a small residual model file: batchnorm2d, an identity block, a block
                                        with a `shortcut` section, a `repeat 2` of blocks using `in`, relu6,
                                        globalavgpool2d
  tests/fixtures/cli/NAME.safetensors   the checkpoint `tapegrad train` wrote for NAME.tg: one epoch on the
                                        first 256 training images of tests/fixtures/mnist_small, one thread
  tests/fixtures/cli/NAME_torch.json    what PyTorch makes of that checkpoint: the state_dict keys and shapes
                                        it loaded (strict=True), and the logits of the twin nn.Sequential in
                                        eval() on the first 8 test images of mnist_small, normalized with the
                                        checkpoint's normalization (x = pixel * (1 / (255 std)) - mean / std,
                                        in float32, as tg::MNIST::normalized computes it)

Regenerate the JSON from the committed checkpoints (from the repository root):

    /usr/bin/python3 tests/gen_fixtures_cli.py

or train a checkpoint again first (after a change to NAME.tg or to what `tapegrad train` writes):

    /usr/bin/python3 tests/gen_fixtures_cli.py --tapegrad build/apps/tapegrad [--model small_residual]

which runs, from the repository root (for each model file, or the one --model names),

    build/apps/tapegrad train --model tests/fixtures/cli/NAME.tg --data tests/fixtures/mnist_small \\
        --limit 256 --epochs 1 --threads 1 --out TMP

and copies TMP/model.safetensors to tests/fixtures/cli/NAME.safetensors before writing the JSON.

How the checkpoint is read: its safetensors metadata holds "format" ("tapegrad-train-2"), "model_text" (the
model file's text) and "run" (JSON: "input" [C, H, W], "class_names", "normalization" {"mean", "std"}, ...);
its tensors are the state_dict of the same torch.nn.Sequential ("0.weight", ..., and "4.body.0.weight",
"6.shortcut.0.weight" inside a residual block) plus "optimizer.*" (the SGD momentum buffers), which are
dropped before load_state_dict. The twin nn.Sequential is built from the model text with the same input-size
inference as tapegrad's model files: line by line here for a file without blocks, and by
tests/gen_fixtures_residual.py's `build` for one with blocks (residual / shortcut / end, repeat N / end, the
`in` token), each block one instance of its Residual class (self.body, self.shortcut or None; forward
body(x) + (x if shortcut is None else shortcut(x)), as docs/model-files.md documents). The safetensors reader
is tests/gen_fixtures_train.py's (there is no `safetensors` package here).

    /usr/bin/python3 tests/gen_fixtures_cli.py --check FILE

loads any checkpoint written by `tapegrad train` the same way (strict=True) and prints its state_dict keys and
its logits on the same 8 images, without writing anything.
"""

import argparse
import gzip
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_fixtures_train import encode, read_safetensors, write_json  # noqa: E402
import gen_fixtures_residual  # noqa: E402  the block grammar's twin builder (`build`, class Residual)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CLI_DIR = os.path.join(HERE, "fixtures", "cli")
MODELS = ("small", "small_residual")  # tests/fixtures/cli/NAME.tg, written by hand
MNIST_DIR = os.path.join(HERE, "fixtures", "mnist_small")
NUM_IMAGES = 8
FORMAT = "tapegrad-train-2"


def train_args(name):
    """The training run of NAME.tg; its paths are relative to the repository root (they end up in the
    checkpoint's metadata)."""
    return ["train", "--model", f"tests/fixtures/cli/{name}.tg", "--data", "tests/fixtures/mnist_small",
            "--limit", "256", "--epochs", "1", "--threads", "1"]


# ---- the checkpoint ----------------------------------------------------------------------------------------


def read_checkpoint(path):
    """(model state_dict without the optimizer's tensors, the run JSON, the model text, the metadata)."""
    tensors, metadata = read_safetensors(path)
    if metadata.get("format") != FORMAT:
        raise ValueError(f"{path}: metadata format {metadata.get('format')!r}, expected {FORMAT!r}"
                         " (not a checkpoint written by `tapegrad train`)")
    run = json.loads(metadata["run"])
    state = {k: v for k, v in tensors.items() if not k.startswith("optimizer.")}
    return state, run, metadata["model_text"], metadata


# ---- the model text, as torch.nn modules ---------------------------------------------------------------------


def parse_size(text):
    """'5' -> (5, 5); '3x5' -> (3, 5)."""
    parts = [int(p) for p in text.split("x")]
    if len(parts) == 1:
        return parts[0], parts[0]
    if len(parts) == 2:
        return parts[0], parts[1]
    raise ValueError(f"bad size {text!r}")


def parse_bool(text):
    if text not in ("true", "false"):
        raise ValueError(f"bad boolean {text!r}")
    return text == "true"


def out_size(n, kernel, stride, padding, dilation=1):
    return (n + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def has_blocks(text):
    """Whether a model text opens a block or takes a channel count from `in` (the block grammar)."""
    for _, words in gen_fixtures_residual.parse_lines(text):
        if words[0] in ("residual", "repeat") or any(w == "in" or w.endswith("*in") or w.endswith("=in")
                                                     for w in words[1:]):
            return True
    return False


def build_sequential(text, input_shape, classes, source="model"):
    """The torch.nn.Sequential a tapegrad model file describes, for a per-example input [C, H, W] or [F].

    Covers the built-in layers of the model-file table in docs/model-files.md; each module is built for the
    shape that reaches it, as tapegrad's model_from_text does. A file with blocks (residual, repeat) or the
    `in` token is built by gen_fixtures_residual.build, each residual block a gen_fixtures_residual.Residual.
    """
    if has_blocks(text):
        return gen_fixtures_residual.build(text, input_shape, classes)
    shape = list(input_shape)
    modules = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        name, positional, options = words[0], [], {}
        for w in words[1:]:
            if "=" in w:
                k, v = w.split("=", 1)
                options[k] = v
            else:
                positional.append(w)
        where = f"{source}:{number}: {line}"

        def count(word):
            return classes if word == "classes" else int(word)

        if name == "conv2d":
            if len(shape) != 3:
                raise ValueError(f"{where}: input {shape} is not [C, H, W]")
            out, kernel = count(positional[0]), parse_size(positional[1])
            stride = parse_size(options.get("stride", "1"))
            dilation = parse_size(options.get("dilation", "1"))
            groups = int(options.get("groups", "1"))
            bias = parse_bool(options.get("bias", "true"))
            pad_text = options.get("padding", "0")
            if pad_text == "valid":
                padding = (0, 0)
            elif pad_text == "same":  # stride 1: PyTorch's 'same' (extra padding, if any, on the bottom/right)
                padding = "same"
            else:
                padding = parse_size(pad_text)
            modules.append(nn.Conv2d(shape[0], out, kernel, stride=stride, padding=padding, dilation=dilation,
                                     groups=groups, bias=bias))
            if padding == "same":
                shape = [out, shape[1], shape[2]]
            else:
                shape = [out] + [out_size(shape[1 + i], kernel[i], stride[i], padding[i], dilation[i])
                                 for i in range(2)]
        elif name in ("maxpool2d", "avgpool2d"):
            kernel = parse_size(positional[0])
            stride = parse_size(options["stride"]) if "stride" in options else kernel
            padding = parse_size(options.get("padding", "0"))
            cls = nn.MaxPool2d if name == "maxpool2d" else nn.AvgPool2d
            modules.append(cls(kernel, stride=stride, padding=padding))
            shape = [shape[0]] + [out_size(shape[1 + i], kernel[i], stride[i], padding[i]) for i in range(2)]
        elif name == "batchnorm2d":
            modules.append(nn.BatchNorm2d(shape[0], eps=float(options.get("eps", "1e-5")),
                                          momentum=float(options.get("momentum", "0.1"))))
        elif name == "globalavgpool2d":
            modules.append(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()))
            shape = [shape[0]]
        elif name == "flatten":
            modules.append(nn.Flatten())
            shape = [int(np.prod(shape))]
        elif name == "linear":
            if len(shape) != 1:
                raise ValueError(f"{where}: input {shape}; add 'flatten' before it")
            out = count(positional[0])
            modules.append(nn.Linear(shape[0], out, bias=parse_bool(options.get("bias", "true"))))
            shape = [out]
        elif name == "relu":
            modules.append(nn.ReLU())
        elif name == "sigmoid":
            modules.append(nn.Sigmoid())
        elif name == "tanh":
            modules.append(nn.Tanh())
        elif name == "softmax":
            modules.append(nn.Softmax(dim=1))
        elif name == "logsoftmax":
            modules.append(nn.LogSoftmax(dim=1))
        elif name == "leakyrelu":
            modules.append(nn.LeakyReLU(float(options.get("slope", "0.01"))))
        elif name == "dropout":
            modules.append(nn.Dropout(float(options.get("p", "0.5"))))
        else:
            raise ValueError(f"{where}: layer '{name}' is not known to this generator")
    if shape != [classes]:
        raise ValueError(f"{source}: the model's output is {shape}, expected [{classes}]")
    return nn.Sequential(*modules)


def load_model(path):
    """The checkpoint's twin nn.Sequential, its weights loaded with strict=True, in eval(); and the run JSON."""
    state, run, text, _ = read_checkpoint(path)
    model = build_sequential(text, run["input"], len(run["class_names"]), run["model_source"])
    # num_batches_tracked is int64 in PyTorch and float32 in the file: load_state_dict copies across dtypes.
    model.load_state_dict(state, strict=True)
    model.eval()
    return model, run, state


# ---- the input images --------------------------------------------------------------------------------------


def read_idx_images(path, count):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, n, rows, cols = struct.unpack(">IIII", data[:16])
    if magic != 0x00000803 or n < count:
        raise ValueError(f"{path}: not an IDX image file with at least {count} images")
    pixels = np.frombuffer(data[16 : 16 + count * rows * cols], dtype=np.uint8)
    return pixels.reshape(count, 1, rows, cols)


def read_idx_labels(path, count):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, n = struct.unpack(">II", data[:8])
    if magic != 0x00000801 or n < count:
        raise ValueError(f"{path}: not an IDX label file with at least {count} labels")
    return [int(v) for v in data[8 : 8 + count]]


def input_images(run):
    """The first NUM_IMAGES test images, normalized like tg::MNIST::normalized, [N, 1, H, W] float32."""
    pixels = read_idx_images(os.path.join(MNIST_DIR, "t10k-images-idx3-ubyte.gz"), NUM_IMAGES)
    mean, std = np.float32(run["normalization"]["mean"][0]), np.float32(run["normalization"]["std"][0])
    scale = np.float32(1.0) / (np.float32(255.0) * std)
    shift = mean / std
    x = pixels.astype(np.float32) * scale - shift
    labels = read_idx_labels(os.path.join(MNIST_DIR, "t10k-labels-idx1-ubyte.gz"), NUM_IMAGES)
    return torch.from_numpy(x.astype(np.float32)), labels


# ---- modes -------------------------------------------------------------------------------------------------


def checkpoint_path(name):
    return os.path.join(CLI_DIR, f"{name}.safetensors")


def retrain(tapegrad, name):
    with tempfile.TemporaryDirectory() as out:
        cmd = [tapegrad] + train_args(name) + ["--out", out]
        print("running:", " ".join(cmd))
        subprocess.run(cmd, check=True, cwd=ROOT)
        shutil.copyfile(os.path.join(out, "model.safetensors"), checkpoint_path(name))
    print(f"wrote {checkpoint_path(name)}: {os.path.getsize(checkpoint_path(name))} bytes")


def build_fixture(name):
    model, run, state = load_model(checkpoint_path(name))
    x, labels = input_images(run)
    with torch.no_grad():
        logits = model(x)
    keys = list(model.state_dict())
    return {"generator": "tests/gen_fixtures_cli.py", "torch_version": torch.__version__,
            "checkpoint": f"{name}.safetensors", "model_file": f"{name}.tg",
            "model_source": run["model_source"],
            "input": run["input"], "normalization": run["normalization"],
            "images": f"the first {NUM_IMAGES} test images of tests/fixtures/mnist_small",
            "labels": labels,
            "state_dict": [{"name": k, "shape": list(state[k].shape)} for k in keys],
            "logits": encode(logits), "predicted": logits.argmax(dim=1).tolist()}


def check(path):
    model, run, state = load_model(path)
    x, labels = input_images(run)
    with torch.no_grad():
        logits = model(x)
    np.set_printoptions(precision=6, suppress=True, linewidth=140)
    print(f"loaded {path} into the twin nn.Sequential of {run['model_source']} (strict=True):")
    for k, v in state.items():
        print(f"  {k}: {list(v.shape)}")
    print(model)
    print(f"logits on the first {NUM_IMAGES} test images of mnist_small (labels {labels}):")
    print(logits.numpy())
    print("predicted:", logits.argmax(dim=1).tolist())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tapegrad", metavar="BIN", help="train NAME.safetensors again with this binary first")
    parser.add_argument("--model", choices=MODELS, help="only this fixture (default: every one)")
    parser.add_argument("--check", metavar="FILE", help="load a `tapegrad train` checkpoint and print its logits")
    args = parser.parse_args()
    if args.check:
        check(args.check)
        return 0
    for name in [args.model] if args.model else MODELS:
        if args.tapegrad:
            retrain(os.path.abspath(args.tapegrad), name)
        write_json(os.path.join(CLI_DIR, f"{name}_torch.json"), build_fixture(name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
