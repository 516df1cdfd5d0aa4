#!/usr/bin/env python3
"""ONNX files written by PyTorch 1.13's torch.onnx.export, for `tapegrad import MODEL.onnx OUT.safetensors`.

Why one file: every fixture of the importer's tests comes from here, the PyTorch twins, the expected
numbers and the bad files built with onnx.helper, so that one run regenerates them all consistently.

Regenerate with (from the repository root; torch 1.13, python3-onnx 1.12, numpy):

    /usr/bin/python3 tests/gen_fixtures_onnx.py

It writes, checked in, into tests/fixtures/onnx/ (the C++ tests only read them and never need torch):

  lenet_op13.onnx, lenet_op17.onnx  the twin of apps/models/lenet.tg at 1x28x28, 10 classes, default init
  cifarnet_op13.onnx                the twin of apps/models/cifarnet.tg at 3x32x32, 10 classes: its batch norms
                                    folded into the convolutions, GlobalAveragePool + Flatten
  small_ops_op13.onnx, _op17.onnx   small_ops() below (SMALL_OPS_DOC), at 1x12x12, 5 classes: LeakyRelu,
                                    Pad + AveragePool, a standalone BatchNormalization (after a pooling, so not
                                    folded), MaxPool with stride and padding, a depthwise Conv (group =
                                    channels), an inverted residual block (1x1 expansion to 6x the channels,
                                    relu6 as Clip, depthwise 3x3, 1x1 projection, identity Add: what
                                    apps/models/mobilenetv2.tg is made of), Sigmoid, Tanh, an identity residual
                                    block and one with a 1x1 stride-2 Conv shortcut, Gemm, LogSoftmax
  lenet_trained_op13.onnx           the lenet twin trained on tests/fixtures/mnist_small (TRAIN below)
  resnet20_trained_op13.onnx        the twin of apps/models/resnet20.tg at 1x28x28, 10 classes, trained the
                                    same way: residual blocks (Add), projection shortcuts, every batch norm
                                    folded (its running statistics from the training)
  bad_*.onnx                        files the importer must refuse, each with one defect (bad_files below),
                                    built with onnx.helper and never checked (several fail the checker)
  expected.json                     for every file: what it is and, for the exports, the numbers to check

Every export is torch.onnx.export(model.eval(), x, path, input_names=["input"], output_names=["logits"],
dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}}, opset_version=13 or 17, do_constant_folding=True)
(default training mode EVAL, so torch folds each Conv + BatchNorm2d pair into one Conv), then
onnx.checker.check_model(full_check=True) and onnx.shape_inference.infer_shapes(strict_mode=True), then run
back through run_graph, a small interpreter of the written graph on the file's own tensors (torch.nn.functional
kernels): its logits must agree with the module's (the largest difference is in "graph_max_abs_diff").

What PyTorch 1.13 writes (as found; tests may rely on it, the importer should not need to): nn.AvgPool2d with
padding becomes Pad (pads from a Constant node, int64 [8]) + AveragePool with pads 0, at opset 13 and 17 alike;
relu6 becomes Clip whose min and max are scalar float Constant nodes (0 and 6), not initializers; Flatten stays
Flatten (axis 1), Linear is Gemm (transB 1); a folded Conv's weight and bias are initializers named
"onnx::Conv_NNN", the others keep their state_dict names ("0.weight"); nodes are named after the module path
("/3/body/body.0/Conv"), the second input of a block's Add is the skip path. The op13 and op17 files of one
model differ only in the opset (and ir_version 7 / 8; BatchNormalization gains training_mode=0 at 17).

The twins: tests/gen_fixtures_cli.py's build_sequential (line by line for a plain model file, through
tests/gen_fixtures_residual.py's build, with its Residual class, for one with blocks), with each
globalavgpool2d as docs/model-files.md's twin nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
(gen_fixtures_residual's GlobalAvgPool2d, a mean over (2, 3), would export as ReduceMean). Weights: PyTorch's
default initialization after torch.manual_seed(SEEDS[name]); in cifarnet and small_ops every batch norm given
weight 1 + 0.2 u and bias 0.2 u (u uniform in [-1, 1)), then running statistics from 4 forward passes in train
mode on random batches with momentum None (a cumulative average), so they are far from 0 / 1 and folding
matters. (The twins of resnet20 with random weights and of mobilenetv2 are not written any more: 1 MB and
2.8 MB; resnet20_trained_op13 serves both the formula batch and the accuracy check, and small_ops covers
mobilenetv2's depthwise convolutions and inverted residual blocks.)

expected.json, per export ("models": name -> entry): "file", "bytes", "opset", "ir_version", "producer",
"input" [C, H, W], "classes", "op_types" (the distinct op_type of the graph's nodes, in order of first
appearance), "op_counts", "initializers", "parameters" (of the PyTorch module, before folding), and "batch": the
fixed input and PyTorch's logits on it (module in eval mode, float32). The fixed input is [3, C, H, W], element
i of its flat (row-major) order being

    x[i] = 1.5 sin(0.37 i) + 0.5 cos(0.011 i)    in double, rounded to float32

("input_formula"; its first 8 values are in "input_head" as a check); "logits" {"shape": [3, classes], "data":
flat, 9 significant digits}, "predicted". The trained models add "training" (SGD settings, steps) and
"accuracy": over all test images of mnist_small, normalized x = pixel * (1 / (255 std)) - mean / std in float32
(as tg::MNIST::normalized and gen_fixtures_cli.input_images compute it; mean 0.1307, std 0.3081), the count of
correct predictions of the module ("correct", "accuracy"), of run_graph on the file ("correct_by_graph"), of the
module on inputs normalized in double as (pixel / 255 - mean) / std ("correct_if_normalized_in_double"), each
prediction, and the smallest gap between the top two logits ("smallest_top2_gap": how close to a tie any image
is). "bad": file -> its defect. Deterministic (the same bytes on every run): fixed seeds, float32,
torch.set_num_threads(2). About 40 s on 2 idle cores, most of it training resnet20.
"""

import gzip
import json
import os
import struct
import sys
import time

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import gen_fixtures_residual  # noqa: E402  the block grammar's twin builder, its Residual class
from gen_fixtures_cli import build_sequential, read_idx_images, read_idx_labels  # noqa: E402

OUT_DIR = os.path.join(HERE, "fixtures", "onnx")
MODELS_DIR = os.path.join(ROOT, "apps", "models")
MNIST_DIR = os.path.join(HERE, "fixtures", "mnist_small")
MEAN, STD = 0.1307, 0.3081
BATCH = 3
INPUT_FORMULA = "x[i] = 1.5 sin(0.37 i) + 0.5 cos(0.011 i), i the flat row-major index into [3, C, H, W], " \
                "computed in double, rounded to float32"
SEEDS = {"lenet": 1, "cifarnet": 2, "resnet20": 3, "small_ops": 5}
# Training of the *_trained models: SGD on the training split of mnist_small, batches in a seeded shuffle.
TRAIN = {"lenet": {"epochs": 10, "batch": 32, "lr": 0.02, "momentum": 0.9, "weight_decay": 5e-4, "seed": 11},
         "resnet20": {"epochs": 6, "batch": 32, "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4, "seed": 12}}


# ---- the twins ---------------------------------------------------------------------------------------------


def model_text(name):
    with open(os.path.join(MODELS_DIR, name + ".tg")) as f:
        return f.read()


def documented_global_pool(module):
    """Each gen_fixtures_residual.GlobalAvgPool2d -> nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())."""
    for name, child in module.named_children():
        if isinstance(child, gen_fixtures_residual.GlobalAvgPool2d):
            setattr(module, name, nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()))
        else:
            documented_global_pool(child)
    return module


def twin(name, input_shape, classes=10):
    torch.manual_seed(SEEDS[name])
    return documented_global_pool(build_sequential(model_text(name), input_shape, classes, name))


def set_batch_norms(model, input_shape, seed):
    """Batch norm weight 1 + 0.2 u, bias 0.2 u, running statistics of 4 random batches (module docstring)."""
    g = torch.Generator().manual_seed(seed)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for bn in bns:
            bn.weight.copy_(1.0 + 0.2 * (2 * torch.rand(bn.weight.shape, generator=g) - 1))
            bn.bias.copy_(0.2 * (2 * torch.rand(bn.bias.shape, generator=g) - 1))
            bn.momentum = None
            bn.reset_running_stats()
        model.train()
        for _ in range(4):
            model(1.2 * torch.randn(16, *input_shape, generator=g) + 0.3)
        for bn in bns:
            bn.momentum = 0.1
    model.eval()
    return model


SMALL_OPS_DOC = """\
conv2d 4 3 padding=1                 -> Conv (pads 1)
leakyrelu slope=0.2                  -> LeakyRelu
avgpool2d 3 stride=1 padding=1       -> Pad + AveragePool (count_include_pad)
batchnorm2d                          -> BatchNormalization (after a pool: not folded)
maxpool2d 3 stride=2 padding=1       -> MaxPool            [4, 6, 6]
conv2d in 3 padding=1 groups=in      -> Conv (group 4: depthwise)
residual (identity, inverted): conv2d 6*in 1, relu6, conv2d in 3 padding=1 groups=in, relu6, conv2d 4 1
                                     -> Conv, Clip, Conv (group 24), Clip, Conv, Add  [24, 6, 6] inside
residual (identity): conv2d 4 3 padding=1, relu6, conv2d 4 3 padding=1 -> Conv, Clip, Conv, Add
sigmoid                              -> Sigmoid
residual: conv2d 8 3 stride=2 padding=1, tanh, conv2d 8 3 padding=1;
  shortcut conv2d 8 1 stride=2       -> Conv, Tanh, Conv, Conv, Add  [8, 3, 3]
relu                                 -> Relu
flatten                              -> Flatten            [72]
linear 5                             -> Gemm
logsoftmax                           -> LogSoftmax (axis 1, the last)"""


def small_ops():
    """SMALL_OPS_DOC as an nn.Sequential, at 1x12x12, 5 classes."""
    torch.manual_seed(SEEDS["small_ops"])
    Res = gen_fixtures_residual.Residual
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.LeakyReLU(0.2),
        nn.AvgPool2d(3, stride=1, padding=1),
        nn.BatchNorm2d(4),
        nn.MaxPool2d(3, stride=2, padding=1),
        nn.Conv2d(4, 4, 3, padding=1, groups=4),
        Res(nn.Sequential(nn.Conv2d(4, 24, 1), nn.ReLU6(), nn.Conv2d(24, 24, 3, padding=1, groups=24), nn.ReLU6(),
                          nn.Conv2d(24, 4, 1))),
        Res(nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU6(), nn.Conv2d(4, 4, 3, padding=1))),
        nn.Sigmoid(),
        Res(nn.Sequential(nn.Conv2d(4, 8, 3, stride=2, padding=1), nn.Tanh(), nn.Conv2d(8, 8, 3, padding=1)),
            nn.Sequential(nn.Conv2d(4, 8, 1, stride=2))),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(72, 5),
        nn.LogSoftmax(dim=1),
    )
    with torch.no_grad():  # larger weights, so relu6's upper bound is reached and the logits spread out
        model[0].weight.mul_(4.0)
        model[5].weight.mul_(2.0)
        model[6].body[0].weight.mul_(4.0)
        model[6].body[2].weight.mul_(2.0)
        model[7].body[0].weight.mul_(4.0)
        model[12].weight.mul_(5.0)
    return set_batch_norms(model, [1, 12, 12], 105)


# ---- export and description --------------------------------------------------------------------------------


def fixed_input(input_shape):
    n = BATCH * int(np.prod(input_shape))
    i = np.arange(n, dtype=np.float64)
    x = 1.5 * np.sin(0.37 * i) + 0.5 * np.cos(0.011 * i)
    return torch.from_numpy(x.astype(np.float32)).reshape(BATCH, *input_shape)


def short(v):
    return float(f"{float(v):.9g}")  # float32's 9 significant digits


def export(model, filename, input_shape, opset):
    path = os.path.join(OUT_DIR, filename)
    model.eval()
    torch.onnx.export(model, fixed_input(input_shape), path, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}}, opset_version=opset,
                      do_constant_folding=True)
    proto = onnx.load(path)
    onnx.checker.check_model(proto, full_check=True)
    onnx.shape_inference.infer_shapes(proto, strict_mode=True)
    return path, proto


def attrs(node):
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def run_graph(proto, x):
    """The graph's output for x, node by node with torch.nn.functional on the file's own tensors (not the
    model's): a check that the file computes what PyTorch's module does, covering the op_types written here."""
    values = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in proto.graph.initializer}
    values[proto.graph.input[0].name] = x
    for node in proto.graph.node:
        a, ins = attrs(node), [values[i] if i else None for i in node.input]
        op = node.op_type
        if op == "Constant":
            out = torch.from_numpy(numpy_helper.to_array(a["value"]).copy())
        elif op == "Conv":
            p = a.get("pads", [0, 0, 0, 0])
            assert p[:2] == p[2:], p
            out = F.conv2d(ins[0], ins[1], ins[2] if len(ins) > 2 else None, stride=a.get("strides", 1),
                           padding=p[:2], dilation=a.get("dilations", 1), groups=a.get("group", 1))
        elif op in ("MaxPool", "AveragePool"):
            p = a.get("pads", [0, 0, 0, 0])
            assert p[:2] == p[2:] and not a.get("ceil_mode", 0), a
            if op == "MaxPool":
                out = F.max_pool2d(ins[0], a["kernel_shape"], a["strides"], p[:2])
            else:
                out = F.avg_pool2d(ins[0], a["kernel_shape"], a["strides"], p[:2],
                                   count_include_pad=bool(a.get("count_include_pad", 0)))
        elif op == "Pad":
            assert a.get("mode", b"constant") == b"constant" and (len(ins) < 3 or ins[2] is None), a
            p = ins[1].tolist()
            rank = len(p) // 2
            torch_pads = []
            for d in reversed(range(rank)):
                torch_pads += [p[d], p[d + rank]]
            out = F.pad(ins[0], torch_pads)
        elif op == "BatchNormalization":
            out = F.batch_norm(ins[0], ins[3], ins[4], ins[1], ins[2], False, 0.0, a["epsilon"])
        elif op == "Gemm":
            assert a.get("transB") == 1 and not a.get("transA", 0), a
            out = a.get("alpha", 1.0) * ins[0] @ ins[1].T + a.get("beta", 1.0) * ins[2]
        else:
            unary = {"Relu": F.relu, "Sigmoid": torch.sigmoid, "Tanh": torch.tanh,
                     "LeakyRelu": lambda t: F.leaky_relu(t, a["alpha"]),
                     "Clip": lambda t: torch.clamp(t, float(ins[1]), float(ins[2])),
                     "GlobalAveragePool": lambda t: t.mean(dim=(2, 3), keepdim=True),
                     "Flatten": lambda t: t.flatten(a.get("axis", 1)),
                     "LogSoftmax": lambda t: F.log_softmax(t, dim=a["axis"]),
                     "Add": lambda t: t + ins[1]}
            out = unary[op](ins[0])
        values[node.output[0]] = out
    return values[proto.graph.output[0].name]


def describe(model, filename, input_shape, classes, opset):
    path, proto = export(model, filename, input_shape, opset)
    x = fixed_input(input_shape)
    with torch.no_grad():
        logits = model(x)
    assert list(logits.shape) == [BATCH, classes], logits.shape
    with torch.no_grad():
        graph_logits = run_graph(proto, x)
    graph_diff = float((graph_logits - logits).abs().max())
    assert graph_diff <= 1e-4 * max(1.0, float(logits.abs().max())), (filename, graph_diff)
    op_types, op_counts = [], {}
    for node in proto.graph.node:
        if node.op_type not in op_counts:
            op_types.append(node.op_type)
            op_counts[node.op_type] = 0
        op_counts[node.op_type] += 1
    size = os.path.getsize(path)
    print(f"{filename}: {size} bytes, opset {opset}, {len(proto.graph.node)} nodes: {op_counts}; "
          f"graph vs module: {graph_diff:.2e}")
    return {"file": filename, "bytes": size, "opset": opset, "ir_version": proto.ir_version,
            "producer": f"{proto.producer_name} {proto.producer_version}", "input": list(input_shape),
            "classes": classes, "op_types": op_types, "op_counts": op_counts,
            "initializers": len(proto.graph.initializer),
            "parameters": sum(p.numel() for p in model.parameters()),
            "batch": {"input_shape": [BATCH] + list(input_shape), "input_formula": INPUT_FORMULA,
                      "input_head": [short(v) for v in x.reshape(-1)[:8]],
                      "logits": {"shape": [BATCH, classes], "data": [short(v) for v in logits.reshape(-1)]},
                      "predicted": logits.argmax(dim=1).tolist(),
                      "graph_max_abs_diff": short(graph_diff)}}


# ---- training on mnist_small -------------------------------------------------------------------------------


def mnist(split):
    prefix = "train" if split == "train" else "t10k"
    labels_path = os.path.join(MNIST_DIR, f"{prefix}-labels-idx1-ubyte.gz")
    with gzip.open(labels_path, "rb") as f:
        count = struct.unpack(">II", f.read(8))[1]
    pixels = read_idx_images(os.path.join(MNIST_DIR, f"{prefix}-images-idx3-ubyte.gz"), count)
    labels = read_idx_labels(labels_path, count)
    return pixels, torch.tensor(labels)


def normalized(pixels):
    """As tg::MNIST::normalized: pixel * (1 / (255 std)) - mean / std, in float32."""
    scale = np.float32(1.0) / (np.float32(255.0) * np.float32(STD))
    shift = np.float32(MEAN) / np.float32(STD)
    return torch.from_numpy((pixels.astype(np.float32) * scale - shift).astype(np.float32))


def train(model, name):
    cfg = TRAIN[name]
    pixels, labels = mnist("train")
    x = normalized(pixels)
    g = torch.Generator().manual_seed(cfg["seed"])
    opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"], momentum=cfg["momentum"],
                          weight_decay=cfg["weight_decay"])
    model.train()
    steps, start = 0, time.time()
    for epoch in range(cfg["epochs"]):
        order = torch.randperm(len(labels), generator=g)
        total = 0.0
        for b in range(0, len(labels), cfg["batch"]):
            idx = order[b:b + cfg["batch"]]
            opt.zero_grad()
            loss = F.cross_entropy(model(x[idx]), labels[idx])
            loss.backward()
            opt.step()
            total += float(loss) * len(idx)
            steps += 1
        print(f"{name}: epoch {epoch + 1}/{cfg['epochs']}, train loss {total / len(labels):.4f}, "
              f"{time.time() - start:.1f} s")
    model.eval()
    return dict(cfg, steps=steps, train_images=len(labels), loss="cross-entropy")


def accuracy(model, proto):
    pixels, labels = mnist("test")
    with torch.no_grad():
        logits = model(normalized(pixels))
        graph = run_graph(proto, normalized(pixels))
        plain = model(torch.from_numpy(((pixels.astype(np.float64) / 255 - MEAN) / STD).astype(np.float32)))
    predicted = logits.argmax(dim=1)
    top2 = logits.topk(2, dim=1).values
    margins = (top2[:, 0] - top2[:, 1]).double()
    correct = int((predicted == labels).sum())
    return {"test_images": len(labels), "correct": correct, "accuracy": correct / len(labels),
            "normalization": {"mean": [MEAN], "std": [STD],
                              "formula": "x = pixel * (1 / (255 std)) - mean / std in float32 "
                                         "(tg::MNIST::normalized)"},
            "correct_by_graph": int((graph.argmax(dim=1) == labels).sum()),
            "correct_if_normalized_in_double": int((plain.argmax(dim=1) == labels).sum()),
            "smallest_top2_gap": short(margins.min()),
            "gaps_below_1e-3": int((margins < 1e-3).sum()),
            "predicted": predicted.tolist()}


# ---- bad files ---------------------------------------------------------------------------------------------


def vi(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def tensor(name, shape, seed):
    values = np.sin(0.7 * np.arange(int(np.prod(shape))) + seed).astype(np.float32) * 0.3
    return helper.make_tensor(name, TensorProto.FLOAT, shape, values.tobytes(), raw=True)


def save_bad(filename, nodes, inputs, outputs, initializers=(), name="bad"):
    graph = helper.make_graph(nodes, name, inputs, outputs, list(initializers))
    model = helper.make_model(graph, producer_name="tests/gen_fixtures_onnx.py",
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    path = os.path.join(OUT_DIR, filename)
    with open(path, "wb") as f:
        f.write(model.SerializeToString())


def conv_chain(weight_shape, **conv_attrs):
    """input [N, 1, 8, 8] -> Conv(weight) -> logits; the output's shape is not checked here."""
    return ([helper.make_node("Conv", ["input", "w"], ["logits"], name="conv", **conv_attrs)],
            [tensor("w", weight_shape, 1)])


def bad_files(lenet_path):
    bad = {}
    n = "N"

    nodes = [helper.make_node("Add", ["input", "extra"], ["sum"], name="add"),
             helper.make_node("Flatten", ["sum"], ["logits"], name="flatten", axis=1)]
    save_bad("bad_two_inputs.onnx", nodes, [vi("input", [n, 1, 4, 4]), vi("extra", [n, 1, 4, 4])],
             [vi("logits", [n, 16])])
    bad["bad_two_inputs.onnx"] = "two graph inputs ('input' and 'extra', added together)"

    nodes = [helper.make_node("Conv", ["input", "w"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1] * 4),
             helper.make_node("Resize", ["c", "", "scales"], ["r"], name="resize", mode="nearest"),
             helper.make_node("Flatten", ["r"], ["logits"], name="flatten", axis=1)]
    scales = helper.make_tensor("scales", TensorProto.FLOAT, [4], [1.0, 1.0, 2.0, 2.0])
    save_bad("bad_unsupported_op.onnx", nodes, [vi("input", [n, 1, 4, 4])], [vi("logits", [n, 128])],
             [tensor("w", [2, 1, 3, 3], 2), scales])
    bad["bad_unsupported_op.onnx"] = "a Resize node (nearest, scales 1, 1, 2, 2) between a Conv and a Flatten"

    nodes, inits = conv_chain([2, 1, 3, 3], kernel_shape=[3, 3], auto_pad="SAME_LOWER")
    save_bad("bad_conv_same_lower.onnx", nodes, [vi("input", [n, 1, 8, 8])], [vi("logits", [n, 2, 8, 8])], inits)
    bad["bad_conv_same_lower.onnx"] = "a Conv with auto_pad=SAME_LOWER (3x3 kernel)"

    nodes = [helper.make_node("Conv", ["input", "w"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1] * 4),
             helper.make_node("GlobalAveragePool", ["c"], ["g"], name="gap"),
             helper.make_node("Flatten", ["g"], ["logits"], name="flatten", axis=1)]
    save_bad("bad_dynamic_spatial.onnx", nodes, [vi("input", [n, 1, "H", "W"])], [vi("logits", [n, 2])],
             [tensor("w", [2, 1, 3, 3], 3)])
    bad["bad_dynamic_spatial.onnx"] = "input [N, 1, 'H', 'W']: symbolic height and width (Conv, GlobalAveragePool)"

    nodes, inits = conv_chain([6, 2, 5, 5], kernel_shape=[5, 5])
    save_bad("bad_conv_weight_shape.onnx", nodes, [vi("input", [n, 1, 8, 8])], [vi("logits", [n, 6, 4, 4])],
             inits)
    bad["bad_conv_weight_shape.onnx"] = "a Conv weight [6, 2, 5, 5] (2 input channels) on an input of 1 channel"

    nodes = [helper.make_node("Flatten", ["input"], ["f"], name="flatten", axis=1),
             helper.make_node("Gemm", ["f", "w", "b"], ["logits"], name="gemm", transB=1)]
    save_bad("bad_gemm_weight_shape.onnx", nodes, [vi("input", [n, 1, 4, 4])], [vi("logits", [n, 10])],
             [tensor("w", [10, 15], 4), tensor("b", [10], 5)])
    bad["bad_gemm_weight_shape.onnx"] = "a Gemm (transB=1) weight [10, 15] on 16 inputs (1x4x4 flattened)"

    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2, 1, 3, 3])  # no raw_data, no float_data
    nodes, _ = conv_chain([2, 1, 3, 3], kernel_shape=[3, 3])
    save_bad("bad_initializer_no_data.onnx", nodes, [vi("input", [n, 1, 8, 8])], [vi("logits", [n, 2, 6, 6])],
             [w])
    bad["bad_initializer_no_data.onnx"] = "the Conv weight initializer has dims [2, 1, 3, 3] and no data at all"

    huge = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[37500000, 16],
                       raw_data=np.ones(4, np.float32).tobytes())
    nodes = [helper.make_node("Flatten", ["input"], ["f"], name="flatten", axis=1),
             helper.make_node("Gemm", ["f", "w"], ["logits"], name="gemm", transB=1)]
    save_bad("bad_huge_tensor.onnx", nodes, [vi("input", [n, 1, 4, 4])], [vi("logits", [n, 37500000])], [huge])
    bad["bad_huge_tensor.onnx"] = ("a Gemm (transB=1) weight declaring dims [37500000, 16] float (600,000,000 values, "
                                   "2.4 GB) with 16 bytes of raw_data; shapes otherwise consistent")

    nodes = [helper.make_node("Relu", ["b_out"], ["a_out"], name="A"),
             helper.make_node("Add", ["a_out", "input"], ["b_out"], name="B"),
             helper.make_node("Flatten", ["a_out"], ["logits"], name="flatten", axis=1)]
    save_bad("bad_cycle.onnx", nodes, [vi("input", [n, 1, 4, 4])], [vi("logits", [n, 16])])
    bad["bad_cycle.onnx"] = "a cycle: node A (Relu) consumes B's output, B (Add) consumes A's"

    nodes = [helper.make_node("Add", ["input", "nowhere"], ["s"], name="add"),
             helper.make_node("Flatten", ["s"], ["logits"], name="flatten", axis=1)]
    save_bad("bad_dangling_input.onnx", nodes, [vi("input", [n, 1, 4, 4])], [vi("logits", [n, 16])])
    bad["bad_dangling_input.onnx"] = "an Add consumes 'nowhere', which no node, input or initializer produces"

    with open(os.path.join(OUT_DIR, "bad_other_message.onnx"), "wb") as f:
        f.write(tensor("weights", [2, 3], 6).SerializeToString())
    bad["bad_other_message.onnx"] = "a serialized onnx.TensorProto (name 'weights', [2, 3] float), not a ModelProto"

    with open(lenet_path, "rb") as f:
        data = f.read()
    with open(os.path.join(OUT_DIR, "bad_truncated.onnx"), "wb") as f:
        f.write(data[:len(data) // 2])
    bad["bad_truncated.onnx"] = f"the first half ({len(data) // 2} of {len(data)} bytes) of lenet_op13.onnx"

    open(os.path.join(OUT_DIR, "bad_empty.onnx"), "wb").close()
    bad["bad_empty.onnx"] = "an empty file (0 bytes; protobuf parses it as an empty ModelProto)"
    return bad


# ---- main --------------------------------------------------------------------------------------------------


def main():
    torch.set_num_threads(2)
    os.makedirs(OUT_DIR, exist_ok=True)
    for f in os.listdir(OUT_DIR):  # nothing stale: this generator owns the directory
        if f.endswith(".onnx") or f == "expected.json":
            os.remove(os.path.join(OUT_DIR, f))
    models = {}

    lenet = twin("lenet", [1, 28, 28]).eval()
    for opset in (13, 17):
        models[f"lenet_op{opset}"] = describe(lenet, f"lenet_op{opset}.onnx", [1, 28, 28], 10, opset)

    cifarnet = set_batch_norms(twin("cifarnet", [3, 32, 32]), [3, 32, 32], 102)
    models["cifarnet_op13"] = describe(cifarnet, "cifarnet_op13.onnx", [3, 32, 32], 10, 13)

    net = small_ops()
    for opset in (13, 17):
        models[f"small_ops_op{opset}"] = describe(net, f"small_ops_op{opset}.onnx", [1, 12, 12], 5, opset)
        models[f"small_ops_op{opset}"]["layers"] = SMALL_OPS_DOC.splitlines()

    for name in ("lenet", "resnet20"):
        model = twin(name, [1, 28, 28])
        training = train(model, name)
        key = f"{name}_trained_op13"
        models[key] = describe(model, f"{key}.onnx", [1, 28, 28], 10, 13)
        models[key]["training"] = training
        models[key]["accuracy"] = accuracy(model, onnx.load(os.path.join(OUT_DIR, f"{key}.onnx")))
        a = models[key]["accuracy"]
        print(f"{key}: {a['correct']}/{a['test_images']} correct ({100 * a['accuracy']:.2f}%), smallest top-2 "
              f"gap {a['smallest_top2_gap']}, by the graph {a['correct_by_graph']}, normalized in double "
              f"{a['correct_if_normalized_in_double']}")

    bad = bad_files(os.path.join(OUT_DIR, "lenet_op13.onnx"))
    for f in bad:
        print(f"{f}: {os.path.getsize(os.path.join(OUT_DIR, f))} bytes")

    doc = {"generator": "tests/gen_fixtures_onnx.py", "torch_version": torch.__version__,
           "onnx_version": onnx.__version__, "input_formula": INPUT_FORMULA,
           "export": "torch.onnx.export(model.eval(), x, path, input_names=['input'], output_names=['logits'], "
                     "dynamic_axes={'input': {0: 'N'}, 'logits': {0: 'N'}}, opset_version=OPSET, "
                     "do_constant_folding=True)",
           "models": models, "bad": bad}
    path = os.path.join(OUT_DIR, "expected.json")
    with open(path, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT_DIR, f)) for f in os.listdir(OUT_DIR))
    print(f"wrote {path}: {os.path.getsize(path)} bytes; {OUT_DIR}: {total} bytes in all")


if __name__ == "__main__":
    main()
