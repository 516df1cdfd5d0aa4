#!/usr/bin/env python3
"""PyTorch reference side of the tapegrad benchmarks (see docs/benchmarks.md).

Run with Debian's python3 (torch 1.13 CPU); the caller sets the environment:

  export GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=4294967296
  export OPENBLAS_NUM_THREADS=1
  /usr/bin/python3 apps/bench/bench_torch.py layers --threads T [--repeats R] [--min-time S]
  /usr/bin/python3 apps/bench/bench_torch.py train --model lenet|convnet --threads T \
      --data DIR [--epochs 1] [--limit N]
  /usr/bin/python3 apps/bench/bench_torch.py train --model cifarnet|mobilenet|resnet20|mobilenetv2 \
      --threads T [--optimizer sgd|adamw] [--images 10000]

Both subcommands print a single JSON object on stdout.

layers: per case and pass ("fwd" under no_grad, "fwd+bwd" with input and weights
  requiring grad, then out.backward(g)), warm up, then R rounds; each round runs
  iterations until >= S seconds have elapsed and records time per call. "us" is the
  median over rounds, "gflop" the nominal work per call (fwd+bwd = 3x fwd for
  conv/linear, 2x for maxpool).
train: one model as in docs/benchmarks.md, batch 64 (128 for the 3x32x32 models, on random
  data: --images training images, 2,000 test images), SGD lr 0.05 momentum 0.9 (or AdamW
  lr 1e-3), cross entropy, torch.manual_seed(1), a fixed-seed randperm shuffle each epoch. The timed
  loop covers batching, forward, backward and step. Then inference on the 10k test
  images (batch 1000, eval, no_grad; one untimed warm-up batch), timed, and test accuracy, after every epoch
  (outside the training timing); the top-level figures are from the last epoch and
  "per_epoch" lists seconds, mean train loss and test accuracy per epoch. Then batch-1
  latency: "latency_us" {"median", "p99"} of 1,000 calls on one test image (eval, no_grad,
  after 20 warm-up calls). "step_losses" lists the first 20 training losses, which
  bench_libtorch (the same loop in C++) must reproduce.
"""
import argparse
import gzip
import json
import os
import resource
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def setup_threads(t):
    torch.set_num_interop_threads(1)
    torch.set_num_threads(t)


# ---------------------------------------------------------------- layers
def conv_case(name, x_shape, w_shape, stride=1, padding=0, groups=1):
    n, _, h, w = x_shape
    cout, cin_per_group, kh, kw = w_shape
    ho = (h + 2 * padding - kh) // stride + 1
    wo = (w + 2 * padding - kw) // stride + 1
    tensors = [torch.randn(x_shape), torch.randn(w_shape), torch.randn(cout)]
    fn = lambda x, w, b: F.conv2d(x, w, b, stride=stride, padding=padding, groups=groups)
    return name, fn, tensors, 2.0 * n * cout * ho * wo * cin_per_group * kh * kw / 1e9, 3


def pool_case(name, x_shape, k, s):
    n, c, h, w = x_shape
    ho, wo = (h - k) // s + 1, (w - k) // s + 1
    fn = lambda x: F.max_pool2d(x, k, s)
    return name, fn, [torch.randn(x_shape)], n * c * ho * wo * k * k / 1e9, 2


def make_cases():
    torch.manual_seed(0)
    lin = [torch.randn(64, 9216), torch.randn(128, 9216), torch.randn(128)]
    bn_mean, bn_var = torch.zeros(64), torch.ones(64)
    return [
        conv_case("conv 32x3x28x28 k4 4f s1", (32, 3, 28, 28), (4, 3, 4, 4)),
        conv_case("conv 1x3x28x28 k2 4f s2", (1, 3, 28, 28), (4, 3, 2, 2), stride=2),
        conv_case("conv 4x3x12x10 k3 128f s2 p1", (4, 3, 12, 10), (128, 3, 3, 3), 2, 1),
        conv_case("conv 64x6x14x14 k5 16f (lenet conv2)", (64, 6, 14, 14), (16, 6, 5, 5)),
        conv_case("conv 64x32x26x26 k3 64f (convnet conv2)", (64, 32, 26, 26), (64, 32, 3, 3)),
        conv_case("conv 64x1x28x28 k5 6f p2 (lenet conv1)", (64, 1, 28, 28), (6, 1, 5, 5), 1, 2),
        conv_case("conv 64x1x28x28 k3 32f (convnet conv1)", (64, 1, 28, 28), (32, 1, 3, 3)),
        conv_case("conv 128x64x16x16 k3 64f p1 (cifarnet conv4)", (128, 64, 16, 16), (64, 64, 3, 3), 1, 1),
        conv_case("depthwise 128x64x16x16 k3 p1", (128, 64, 16, 16), (64, 1, 3, 3), 1, 1, 64),
        pool_case("maxpool 32x3x28x28 k4 s2", (32, 3, 28, 28), 4, 2),
        pool_case("maxpool 64x64x24x24 k2 s2", (64, 64, 24, 24), 2, 2),
        # batch norm in training mode is memory traffic; "gflop" counts ~10 flops per element of forward
        ("batchnorm2d 128x64x16x16 train",
         lambda x, w, b, rm=bn_mean, rv=bn_var: F.batch_norm(x, rm, rv, w, b, training=True),
         [torch.randn(128, 64, 16, 16), torch.randn(64), torch.randn(64)], 10 * 128 * 64 * 16 * 16 / 1e9, 2),
        ("avgpool 128x64x16x16 k2 s2", lambda x: F.avg_pool2d(x, 2, 2), [torch.randn(128, 64, 16, 16)],
         128 * 64 * 16 * 16 / 1e9, 2),
        ("global avgpool 128x128x8x8", lambda x: F.adaptive_avg_pool2d(x, 1).flatten(1),
         [torch.randn(128, 128, 8, 8)], 128 * 128 * 8 * 8 / 1e9, 2),
        ("linear 64x9216 -> 128", F.linear, lin, 2.0 * 64 * 9216 * 128 / 1e9, 3),
    ]


def time_per_call(step, repeats, min_time):
    for _ in range(3):  # warm-up (allocator, kernels, caches)
        step()
    t_end = time.perf_counter() + min_time
    while time.perf_counter() < t_end:
        step()
    rounds = []
    for _ in range(repeats):
        n, t0 = 0, time.perf_counter()
        while True:
            step()
            n += 1
            dt = time.perf_counter() - t0
            if dt >= min_time:
                break
        rounds.append(dt / n)
    return statistics.median(rounds)


def cmd_layers(args):
    results = []
    for name, fn, tensors, gflop, bwd_factor in make_cases():
        def fwd():
            with torch.no_grad():
                fn(*tensors)

        leaves = [t.detach().clone().requires_grad_(True) for t in tensors]
        torch.manual_seed(1)
        with torch.no_grad():
            g = torch.randn_like(fn(*leaves))

        def fwd_bwd():
            for t in leaves:
                t.grad = None
            fn(*leaves).backward(g)

        for pass_name, step, work in (("fwd", fwd, gflop),
                                      ("fwd+bwd", fwd_bwd, gflop * bwd_factor)):
            s = time_per_call(step, args.repeats, args.min_time)
            results.append({"name": name, "pass": pass_name,
                            "us": round(s * 1e6, 3), "gflop": work})
    print(json.dumps({"threads": args.threads, "torch": torch.__version__,
                      "results": results}, indent=1))


# ---------------------------------------------------------------- train
def read_idx(data_dir, stem):
    for name in (stem + "-ubyte", stem.replace("-idx", ".idx") + "-ubyte"):
        for ext, opener in (("", open), (".gz", gzip.open)):
            path = os.path.join(data_dir, name + ext)
            if os.path.exists(path):
                with opener(path, "rb") as f:
                    raw = f.read()
                ndim = raw[3]
                dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
                return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)
    sys.exit(f"bench_torch: no {stem}-ubyte[.gz] in {data_dir}")


def load_mnist(data_dir, split, limit=None):
    images = read_idx(data_dir, f"{split}-images-idx3")
    labels = read_idx(data_dir, f"{split}-labels-idx1")
    if limit:
        images, labels = images[:limit], labels[:limit]
    x = torch.from_numpy(images.astype(np.float32) / 255.0)
    x = ((x - 0.1307) / 0.3081).reshape(-1, 1, 28, 28).contiguous()
    return x, torch.from_numpy(labels.astype(np.int64))


def conv_bn_relu(cin, cout, k, stride=1, groups=1):
    return [nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups), nn.BatchNorm2d(cout), nn.ReLU()]


class Residual(nn.Module):
    """body(x) + x, or body(x) + shortcut(x): the Residual of docs/model-files.md (tg::Residual)."""

    def __init__(self, body, shortcut=None):
        super().__init__()
        self.body, self.shortcut = body, shortcut

    def forward(self, x):
        return self.body(x) + (x if self.shortcut is None else self.shortcut(x))


def conv_bn(cin, cout, k, stride=1, groups=1):
    return [nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]


def resnet20():
    """apps/models/resnet20.tg: 3 stages of 3 basic blocks (16, 32, 64 channels); the first block of stages 2 and
    3 halves the size and has a 1x1 projection shortcut."""
    layers, c = [*conv_bn(3, 16, 3), nn.ReLU()], 16
    for out in (16, 32, 64):
        for _ in range(3):
            stride = 2 if out != c else 1
            body = nn.Sequential(*conv_bn(c, out, 3, stride), nn.ReLU(), *conv_bn(out, out, 3))
            layers += [Residual(body, nn.Sequential(*conv_bn(c, out, 1, stride)) if stride != 1 else None), nn.ReLU()]
            c = out
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 10))


def mobilenetv2():
    """apps/models/mobilenetv2.tg: inverted residual blocks (expansion t, output channels, blocks n, first stride
    s) at width 0.5, a stride-1 first conv; the identity where the stride is 1 and the channels match."""
    layers, c = [*conv_bn(3, 16, 3), nn.ReLU6()], 16
    for t, out, n, s in ((1, 8, 1, 1), (6, 16, 2, 2), (6, 16, 3, 2), (6, 32, 4, 2), (6, 48, 3, 1), (6, 80, 3, 2),
                         (6, 160, 1, 1)):
        for i in range(n):
            stride, hidden = s if i == 0 else 1, c * t
            block = [*conv_bn(c, hidden, 1), nn.ReLU6()] if t != 1 else []
            block += [*conv_bn(hidden, hidden, 3, stride, groups=hidden), nn.ReLU6(), *conv_bn(hidden, out, 1)]
            layers += [Residual(nn.Sequential(*block))] if stride == 1 and c == out else block
            c = out
    return nn.Sequential(*layers, *conv_bn(c, 1280, 1), nn.ReLU6(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(1280, 10))


RANDOM_DATA_MODELS = ("cifarnet", "mobilenet", "resnet20", "mobilenetv2")


def make_model(name):
    if name == "resnet20":
        return resnet20()
    if name == "mobilenetv2":
        return mobilenetv2()
    if name == "cifarnet":
        return nn.Sequential(
            *conv_bn_relu(3, 32, 3), *conv_bn_relu(32, 32, 3), nn.MaxPool2d(2),
            *conv_bn_relu(32, 64, 3), *conv_bn_relu(64, 64, 3), nn.MaxPool2d(2),
            *conv_bn_relu(64, 128, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 10))
    if name == "mobilenet":
        layers, c = conv_bn_relu(3, 32, 3), 32
        for block in range(4):  # depthwise 3x3 (stride 2 in the 2nd and 4th), then pointwise 1x1 to 2C
            layers += conv_bn_relu(c, c, 3, stride=2 if block % 2 == 1 else 1, groups=c) + conv_bn_relu(c, 2 * c, 1)
            c *= 2
        return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 10))
    if name == "lenet":
        return nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, 10))
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(9216, 128), nn.ReLU(),
        nn.Linear(128, 10))


def evaluate(model, x, y, batch=1000):
    model.eval()
    correct = 0
    with torch.no_grad():
        model(x[:batch])  # untimed warm-up batch (allocator, eval-mode kernels)
        t0 = time.perf_counter()
        for i in range(0, x.shape[0], batch):
            pred = model(x[i:i + batch]).argmax(1)
            correct += int((pred == y[i:i + batch]).sum())
        dt = time.perf_counter() - t0
    model.train()
    return x.shape[0] / dt, correct / x.shape[0]


def latency_us(model, image):
    """Batch-1 inference as predict and embedded users see it: eval mode, no_grad, 20 warm-up calls, then
    1,000 timed one by one; median and p99 (the 990th of 1,000) in microseconds."""
    model.eval()
    times = []
    with torch.no_grad():
        for _ in range(20):
            model(image)
        for _ in range(1000):
            t0 = time.perf_counter()
            model(image)
            times.append((time.perf_counter() - t0) * 1e6)
    times.sort()
    return {"median": round(statistics.median(times), 2), "p99": round(times[989], 2)}


def cmd_train(args):
    if args.model in RANDOM_DATA_MODELS:  # 3x32x32 random data: the speed does not depend on it
        torch.manual_seed(1)
        x_train, y_train = torch.randn(args.images, 3, 32, 32), torch.randint(10, (args.images,))
        x_test, y_test = torch.randn(2000, 3, 32, 32), torch.randint(10, (2000,))
        batch = 128
    else:
        x_train, y_train = load_mnist(args.data, "train", args.limit)
        x_test, y_test = load_mnist(args.data, "t10k")
        batch = 64
    torch.manual_seed(1)
    model = make_model(args.model)
    if args.optimizer == "adamw":
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    shuffle_gen = torch.Generator().manual_seed(1)
    n = x_train.shape[0]
    per_epoch, train_time = [], 0.0
    step_losses = []  # the first 20, for scripts/bench.py's step-for-step check against bench_libtorch
    model.train()
    for epoch in range(args.epochs):
        loss_sum, steps = torch.zeros(()), 0
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=shuffle_gen)
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            xb, yb = x_train[idx], y_train[idx]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16"):
                loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach()
            if len(step_losses) < 20:
                step_losses.append(loss.detach())
            steps += 1
        dt = time.perf_counter() - t0
        train_time += dt
        infer_ips, acc = evaluate(model, x_test, y_test)  # last epoch's is reported
        per_epoch.append({"epoch": epoch + 1, "seconds": round(dt, 3),
                          "train_loss": float(loss_sum) / steps, "test_accuracy": acc})
    latency = latency_us(model, x_test[:1])
    print(json.dumps({
        "model": args.model, "threads": args.threads, "precision": args.precision, "optimizer": args.optimizer,
        "torch": torch.__version__,
        "train_images_per_s": round(n * args.epochs / train_time, 1),
        "epoch_seconds": round(train_time / args.epochs, 3),
        "train_loss": per_epoch[-1]["train_loss"],
        "infer_images_per_s": round(infer_ips, 1),
        "test_accuracy": acc,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "latency_us": latency,
        "step_losses": [float(l) for l in step_losses],
        "per_epoch": per_epoch,
    }, indent=1))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    pl = sub.add_parser("layers")
    pl.add_argument("--threads", type=int, required=True)
    pl.add_argument("--repeats", type=int, default=15)
    pl.add_argument("--min-time", type=float, default=0.05)
    pt = sub.add_parser("train")
    pt.add_argument("--model", choices=["lenet", "convnet", *RANDOM_DATA_MODELS], required=True)
    pt.add_argument("--optimizer", choices=["sgd", "adamw"], default="sgd")
    pt.add_argument("--images", type=int, default=10000, help="random 3x32x32 training images (the 3x32x32 models)")
    pt.add_argument("--threads", type=int, required=True)
    pt.add_argument("--data", default=".cache/mnist")
    pt.add_argument("--epochs", type=int, default=1)
    pt.add_argument("--limit", type=int, default=None)
    pt.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                    help="bf16: forward and loss under torch.autocast('cpu', dtype=torch.bfloat16)")
    args = p.parse_args()
    setup_threads(args.threads)
    (cmd_layers if args.cmd == "layers" else cmd_train)(args)


if __name__ == "__main__":
    main()
