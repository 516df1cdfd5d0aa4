#!/usr/bin/env python3
"""make bench: tapegrad against PyTorch 1.13's C++ frontend (libtorch) and PyTorch from Python, interleaved
in one run on this machine (docs/benchmarks.md). Why one file: every section shares the runners, the
quiet-machine checks and the table printing, and `make bench` is one command.

  scripts/bench.py [--threads 1,2] [--models lenet,convnet,cifarnet,mobilenet,resnet20,mobilenetv2,cifarnet:adamw]
                   [--layers-only | --train-only] [--layers REGEX] [--epochs 1] [--limit N] [--images 10000]
                   [--repeats 15] [--peak-gflops 225] [--openblas-own-kernels | --openblas-both] [--json FILE] [--bf16]
                   [--onnx | --onnx-only] [--onnx-models lenet,convnet,cifarnet,resnet20]
                   [--int8 | --int8-only] [--int8-models convnet,cifarnet,resnet20,mobilenetv2]

For each thread count T it runs the layer micro-benchmarks (bench_layers, bench_libtorch layers,
bench_torch.py layers), then for each model one training epoch plus inference and batch-1 latency
(bench_train, bench_libtorch train, bench_torch.py train), the three one right after the other, and prints one
table: workload, tapegrad, libtorch, PyTorch and the ratios (> 1 means tapegrad is faster), plus each conv's
GFLOP/s as a fraction of OpenBLAS SGEMM on its im2col GEMM shape. The MNIST models (lenet, convnet) read
--data (--limit N: the first N training images only, for a quick check); the 3x32x32 models (cifarnet,
mobilenet, resnet20, mobilenetv2; MODEL:adamw trains with AdamW) train on --images random images. With the
models it also times the data pipeline alone (DataLoader's batching, normalization and augmentation
flip,crop=4 of --images random 3x32x32 images, batch 64; tapegrad only) beside cifarnet's training rate, and
the decoding of a folder of PNGs. PyTorch and libtorch run at their best: GLIBC_TUNABLES keeping freed memory, OPENBLAS_NUM_THREADS=1
under their own threads. tapegrad runs with the environment as it is. --openblas-own-kernels drops
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE for every command (OpenBLAS then picks its AVX-512 kernels);
--openblas-both runs everything once as is and once that way and prints both tables.

Against onnxruntime (--onnx; part of the whole run, --onnx-only alone): for each model of --onnx-models and each
T, bench_train (its shortest training: --limit 1 or --images 1) times tapegrad's predict path and writes the
same model as ONNX (--onnx), then tests/onnx/ort_run.js --bench times it in onnxruntime-node (graph
optimizations 'all', intraOpNumThreads T, interOpNumThreads 1, spinning thread pool): batch-1 median and p99
of 1,000 calls, images/s at batch 1000. A table of both and the ratios, each row marked against the targets
(tapegrad's batch-1 latency within 1.2x of onnxruntime's, throughput at least onnxruntime's). Each model
waits for a quiet machine first (no cc1plus running, 1-minute load average below --quiet-load; polled every
20 s for up to --quiet-wait seconds), and a row during which a compiler ran is measured again.

int8 inference (--int8; part of the whole run, --int8-only alone; docs/int8.md): for each model of --int8-models
and each T, bench_int8 times the float32 predict path and the same model quantized by tg::Int8Model (batch-1
median and p99 of 1,000 calls, images/s at batch 1000) and writes the float32 model as ONNX, which
onnxruntime then times as above. Rows are marked against the targets (int8 at least 2x float32 in batch-1
latency and in batch-1000 throughput) and waited for and re-measured as the onnxruntime rows are.

The libtorch twin runs bench_torch.py's training loop step for step (same data, seed, init order and shuffle),
so the first 20 step losses of the two must agree: a line per model says by how much (max relative
difference; above 1e-3 it is a MISMATCH warning, and the libtorch figures are then not the same workload).

--bf16 adds, per model, a training row in bf16 mixed precision: tapegrad --precision bf16 (docs/precision.md)
against libtorch and PyTorch with the forward and loss under autocast to bfloat16 (oneDNN's bf16 convs), its
speed-up over tapegrad's fp32 row, and its "fp32-equivalent" GFLOP/s (the same FLOP count) against the fp32
FMA peak; and its peak RSS.

GFLOP/s of the training and inference rows count the convolutions and linear layers only (conv:
2*Cout*(Cin/groups)*Kh*Kw*Ho*Wo, linear: 2*in*out per image; elementwise ops, pooling and batch norm are
not counted), a training image as 3x its forward FLOPs (forward, input gradient, weight gradient). % of
peak = GFLOP/s / (--peak-gflops * T), the FMA peak of one core (about 225 GFLOP/s here with AVX-512).
"""
import argparse
import ctypes
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
TORCH_ENV = {"GLIBC_TUNABLES": "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=4294967296",
             "OPENBLAS_NUM_THREADS": "1"}


def env_for(torch, own_kernels):
    env = dict(os.environ)
    if own_kernels:
        env.pop("OPENBLAS_CORETYPE", None)
        env.pop("OPENBLAS_L2_SIZE", None)
    if torch:
        env.update(TORCH_ENV)
    return env


def run_json(cmd, env):
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def tapegrad_layers(threads, repeats, env):
    data = run_json([os.path.join(BUILD, "apps", "bench_layers"), "--threads", str(threads),
                     "--benchmark_format=json", f"--benchmark_repetitions={repeats}",
                     "--benchmark_min_time=0.05", "--benchmark_report_aggregates_only=true"], env)
    out = {}
    for b in data["benchmarks"]:
        if b.get("aggregate_name") != "median":
            continue
        name, _, kind = b["run_name"].rpartition("/")
        out[(name, kind)] = {"us": b["real_time"], "gflop": b["gflop"]}
        if "GB/s" in b:  # memory-bound kernels: bytes read + written per second
            out[(name, kind)]["GB/s"] = b["GB/s"] / 1e9
    return out, data["context"]


LIBTORCH = os.path.join(BUILD, "apps", "bench_libtorch")


def libtorch_layers(threads, repeats, env):
    if not os.path.exists(LIBTORCH):
        return {}
    data = run_json([LIBTORCH, "layers", "--threads", str(threads), "--repeats", str(repeats)], env)
    return {(r["name"], r["pass"]): r for r in data["results"]}


def torch_layers(threads, repeats, env):
    data = run_json(["/usr/bin/python3", os.path.join(ROOT, "apps", "bench", "bench_torch.py"), "layers",
                     "--threads", str(threads), "--repeats", str(repeats)], env)
    return {(r["name"], r["pass"]): r for r in data["results"]}, data["torch"]


RANDOM_DATA_MODELS = ("cifarnet", "mobilenet", "resnet20", "mobilenetv2")


def train(which, model, threads, a, env, precision="fp32"):
    """One run of MODEL[:OPTIMIZER]; None for libtorch when bench_libtorch is not built."""
    name, _, optimizer = model.partition(":")
    optimizer = optimizer or "sgd"
    if which == "tapegrad":
        cmd = [os.path.join(BUILD, "apps", "bench_train")]
    elif which == "libtorch":
        if not os.path.exists(LIBTORCH):
            return None
        cmd = [LIBTORCH, "train"]
    else:
        cmd = ["/usr/bin/python3", os.path.join(ROOT, "apps", "bench", "bench_torch.py"), "train"]
    cmd += ["--model", name, "--threads", str(threads), "--optimizer", optimizer]
    if precision != "fp32":
        cmd += ["--precision", precision]
    if name in RANDOM_DATA_MODELS:
        cmd += ["--images", str(a.images)]
    else:
        cmd += ["--data", a.data, "--epochs", str(a.epochs)]
        if a.limit:
            cmd += ["--limit", str(a.limit)]
    return run_json(cmd, env)


def forward_flop(model):
    """Forward FLOPs per image of a benchmark model (the module docstring's convention)."""
    name = model.split(":")[0]
    c, h, w = (3, 32, 32) if name in RANDOM_DATA_MODELS else (1, 28, 28)
    flop = 0

    def conv(cout, k, stride=1, padding=0, groups=1):
        nonlocal c, h, w, flop
        h, w = (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1
        flop += 2 * cout * (c // groups) * k * k * h * w
        c = cout

    def pool(k):  # max pooling k x k, stride k; global average pooling when k is None
        nonlocal h, w
        h, w = (1, 1) if k is None else (h // k, w // k)

    def linear(out):
        nonlocal c, h, w, flop
        flop += 2 * c * h * w * out
        c, h, w = out, 1, 1

    if name == "lenet":
        conv(6, 5, padding=2)
        pool(2)
        conv(16, 5)
        pool(2)
        for out in (120, 84, 10):
            linear(out)
    elif name == "convnet":
        conv(32, 3)
        conv(64, 3)
        pool(2)
        linear(128)
        linear(10)
    elif name == "cifarnet":
        for cout in (32, 32, "pool", 64, 64, "pool", 128):
            if cout == "pool":
                pool(2)
            else:
                conv(cout, 3, padding=1)
        pool(None)
        linear(10)
    elif name == "mobilenet":
        conv(32, 3, padding=1)
        for block in range(4):  # depthwise 3x3 (stride 2 in the 2nd and 4th), pointwise 1x1 to 2C
            conv(c, 3, stride=2 if block % 2 else 1, padding=1, groups=c)
            conv(2 * c, 1)
        pool(None)
        linear(10)
    elif name == "resnet20":
        conv(16, 3, padding=1)
        for out in (16, 32, 64):
            for _ in range(3):
                cin = c
                conv(out, 3, stride=2 if out != cin else 1, padding=1)
                conv(out, 3, padding=1)
                if out != cin:  # the 1x1 projection shortcut, at the block's output size
                    flop += 2 * out * cin * h * w
        pool(None)
        linear(10)
    elif name == "mobilenetv2":  # apps/models/mobilenetv2.tg: (expansion, channels, blocks, first stride)
        conv(16, 3, padding=1)
        for t, out, n, s in ((1, 8, 1, 1), (6, 16, 2, 2), (6, 16, 3, 2), (6, 32, 4, 2), (6, 48, 3, 1),
                             (6, 80, 3, 2), (6, 160, 1, 1)):
            for i in range(n):
                if t != 1:
                    conv(t * c, 1)
                conv(c, 3, stride=s if i == 0 else 1, padding=1, groups=c)
                conv(out, 1)
        conv(1280, 1)
        pool(None)
        linear(10)
    else:
        return None  # a model file of the user's: no count
    return flop


def field(result, *keys):
    """result[key][key]...; None when that side did not run (no twin) or lacks the key."""
    for key in keys:
        if not result:
            return None
        result = result.get(key)
    return result


def work_note(flop, factor, rate, ours, lib, peak):
    """GFLOP/s and % of FMA peak of tapegrad's images/s under `rate`, libtorch's % beside it."""
    if not flop:
        return ""
    gflops = lambda result: flop * factor * result[rate] / 1e9
    note = f"{gflops(ours):.1f} GFLOP/s = {100 * gflops(ours) / peak:.0f}% of FMA peak"
    if field(lib, rate):
        note += f" (libtorch {100 * gflops(lib) / peak:.0f}%)"
    return note


def step_loss_difference(lib, py):
    """(max relative difference, count) of the twins' first step losses; None when either has none."""
    a, b = (lib or {}).get("step_losses"), (py or {}).get("step_losses")
    if not a or not b or len(a) != len(b):
        return None
    return max(abs(x - y) / abs(y) for x, y in zip(a, b)), len(a)


LOSS_MISMATCH = 1e-3


PIPELINE_AUGMENT = "flip,crop=4"


def pipeline(threads, a, env):
    """images/s of tapegrad's batching + normalization + augmentation alone (docs/benchmarks.md, "data pipeline")."""
    return run_json([os.path.join(BUILD, "apps", "bench_train"), "--pipeline", "--augment", PIPELINE_AUGMENT,
                     "--threads", str(threads), "--images", str(a.images)], env)


def decode(threads, a, env):
    """images/s of reading a folder of 28x28 PNGs (MNIST digits) into memory (docs/benchmarks.md, "data pipeline")."""
    folder = os.path.join(ROOT, ".cache", "bench_png")
    return run_json([os.path.join(BUILD, "apps", "bench_train"), "--decode", folder, "--data", a.data,
                     "--threads", str(threads), "--images", "10000"], env)


def openblas_info(env):
    code = ("import ctypes; l = ctypes.CDLL('libopenblas.so.0'); "
            "l.openblas_get_corename.restype = ctypes.c_char_p; l.openblas_get_config.restype = ctypes.c_char_p; "
            "print(l.openblas_get_corename().decode(), '|', l.openblas_get_config().decode())")
    try:
        return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "unknown"


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def run(a, own_kernels):
    """Everything once in one OpenBLAS setting: prints the header and the table, returns the raw results."""
    tg_env, torch_env = env_for(False, own_kernels), env_for(True, own_kernels)
    rows, raw = [], {"layers": {}, "train": {}}
    loss_checks = {}  # model -> [(T, difference or None)]
    torch_version = "?"
    for threads in [int(t) for t in a.threads.split(",")]:
        peak = a.peak_gflops * threads
        if not a.train_only:
            tg, context = tapegrad_layers(threads, a.repeats, tg_env)
            lt = libtorch_layers(threads, a.repeats, torch_env)
            pt, torch_version = torch_layers(threads, a.repeats, torch_env)
            raw["layers"][threads] = {side: {"/".join(k): v for k, v in d.items()}
                                      for side, d in (("tapegrad", tg), ("libtorch", lt), ("torch", pt))}
            for (name, kind), r in tg.items():
                if kind == "sgemm" or not re.search(a.layers, name):
                    continue
                gflops = r["gflop"] / (r["us"] * 1e-6)
                note = ""
                sg = tg.get((name, "sgemm"))
                if sg and kind == "fwd":
                    note = f"{gflops:.1f} GFLOP/s = {100 * gflops / (sg['gflop'] / (sg['us'] * 1e-6)):.0f}% of SGEMM"
                elif "GB/s" in r:
                    note = f"{r['GB/s']:.1f} GB/s"
                elif r["gflop"] > 0 and "pool" not in name:
                    note = f"{gflops:.1f} GFLOP/s"
                refs = [d.get((name, kind)) for d in (lt, pt)]
                rows.append((f"{name} {kind} (us)", threads, r["us"], *[x["us"] if x else None for x in refs],
                             note, True))
        if not a.layers_only:
            for model in a.models.split(","):
                t = train("tapegrad", model, threads, a, tg_env)
                l = train("libtorch", model, threads, a, torch_env)
                r = train("torch", model, threads, a, torch_env)
                torch_version = r.get("torch", torch_version)
                raw["train"][f"{model}/{threads}"] = {"tapegrad": t, "libtorch": l, "torch": r}
                loss_checks.setdefault(model, []).append((threads, step_loss_difference(l, r)))
                flop = forward_flop(model)
                acc = "random data" if model.split(":")[0] in RANDOM_DATA_MODELS else \
                    "test acc " + " / ".join(f"{x['test_accuracy']:.4f}" if x else "-" for x in (t, l, r))
                rows.append((f"{model} train (img/s)", threads, t["train_images_per_s"],
                             field(l, "train_images_per_s"), r["train_images_per_s"],
                             f"{acc}; {work_note(flop, 3, 'train_images_per_s', t, l, peak)}", False))
                rows.append((f"{model} inference b1000 (img/s)", threads, t["infer_images_per_s"],
                             field(l, "infer_images_per_s"), r["infer_images_per_s"],
                             work_note(flop, 1, "infer_images_per_s", t, l, peak), False))
                for stat in ("median", "p99"):
                    rows.append((f"{model} latency b1 {stat} (us)", threads, t["latency_us"][stat],
                                 field(l, "latency_us", stat), r["latency_us"][stat],
                                 "1,000 calls, eval, no grad" if stat == "median" else "", True))
                rows.append((f"{model} peak RSS (MiB)", threads, t["peak_rss_mib"], field(l, "peak_rss_mib"),
                             r["peak_rss_mib"], "ratio: other / tapegrad", True))
                if a.bf16:  # tapegrad --precision bf16 against libtorch and PyTorch under autocast bf16
                    tb = train("tapegrad", model, threads, a, tg_env, "bf16")
                    lb = train("libtorch", model, threads, a, torch_env, "bf16")
                    rb = train("torch", model, threads, a, torch_env, "bf16")
                    raw["train"][f"{model}/{threads}/bf16"] = {"tapegrad": tb, "libtorch": lb, "torch": rb}
                    own = tb["train_images_per_s"] / t["train_images_per_s"]
                    note = f"{own:.2f}x tapegrad's fp32"
                    if flop:
                        gf = flop * 3 * tb["train_images_per_s"] / 1e9
                        note += f"; {gf:.1f} fp32-equivalent GFLOP/s = {100 * gf / peak:.0f}% of the fp32 FMA peak"
                    if field(lb, "train_images_per_s"):
                        note += f" (libtorch bf16 {lb['train_images_per_s'] / l['train_images_per_s']:.2f}x its fp32)"
                    rows.append((f"{model} train bf16 (img/s)", threads, tb["train_images_per_s"],
                                 field(lb, "train_images_per_s"), rb["train_images_per_s"], note, False))
                    rows.append((f"{model} bf16 peak RSS (MiB)", threads, tb["peak_rss_mib"],
                                 field(lb, "peak_rss_mib"), rb["peak_rss_mib"], "ratio: other / tapegrad", True))
            p = pipeline(threads, a, tg_env)
            raw["train"][f"pipeline/{threads}"] = p
            step = raw["train"].get(f"cifarnet/{threads}", {}).get("tapegrad")
            note = ""
            if step:  # the pipeline's time per image as a share of a cifarnet training step's
                share = 100 * step["train_images_per_s"] / p["images_per_s"]
                note = f"{share:.1f}% of a cifarnet step ({step['train_images_per_s']:.0f} img/s)"
            rows.append((f"data pipeline: batching+normalize+augment {PIPELINE_AUGMENT}, cifar 32x32x3, batch 64 "
                         "(img/s)", threads, p["images_per_s"], None, None, note, False))
            d = decode(threads, a, tg_env)
            raw["train"][f"decode/{threads}"] = d
            rows.append((f"data pipeline: decoding a folder of {d['decode']} into memory (img/s)", threads,
                         d["images_per_s"], None, None, "", False))

    print(f"machine: {cpu_model()}, {os.cpu_count()} cores; {platform.platform()}")
    print(f"OpenBLAS (tapegrad's environment): {openblas_info(tg_env)}; OPENBLAS_CORETYPE="
          f"{tg_env.get('OPENBLAS_CORETYPE', '(unset)')}")
    git = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"], capture_output=True, text=True)
    print(f"tapegrad {git.stdout.strip()} (Release, -march=native); PyTorch {torch_version} with {TORCH_ENV}")
    print(f"libtorch: {'build/apps/bench_libtorch' if os.path.exists(LIBTORCH) else 'not built (apt-get install libtorch-dev)'}")
    for model, checks in loss_checks.items():
        ts = ",".join(str(t) for t, _ in checks)
        if any(d is None for _, d in checks):
            print(f"libtorch twin of {model}: no step losses to compare (T={ts})")
            continue
        worst, n = max(d for _, d in checks)
        if worst > LOSS_MISMATCH:
            print(f"WARNING: MISMATCH: libtorch twin of {model} differs from PyTorch by up to {worst:.1e} relative "
                  f"over {n} step losses (T={ts}): not the same workload")
        else:
            within = "bit-identical" if worst == 0 else f"within {worst:.0e} relative"
            print(f"libtorch twin of {model} matches PyTorch: {n} step losses {within} (T={ts})")
    if not a.layers_only:
        counts = {m.split(":")[0]: forward_flop(m) for m in a.models.split(",")}
        print("FLOPs: conv and linear layers only, forward per image: " +
              ", ".join(f"{m} {f / 1e6:.2f} MFLOP" for m, f in counts.items() if f) +
              f"; a training image counts 3x; % of FMA peak = GFLOP/s / ({a.peak_gflops:g} x T)")
    print("ratio > 1: tapegrad is faster (times: other / tapegrad; rates: tapegrad / other)\n")
    w = max(len(r[0]) for r in rows) if rows else 20
    print(f"| {'workload':<{w}} | T | {'tapegrad':>10} | {'libtorch':>10} | {'PyTorch':>10} "
          f"| vs libtorch | vs PyTorch | note |")
    print(f"|{'-' * (w + 2)}|---|{'-' * 12}|{'-' * 12}|{'-' * 12}|-------------|------------|------|")
    num = lambda v: f"{v:10.1f}" if v is not None else f"{'-':>10}"
    for name, t, ours, lib, py, note, lower_is_better in rows:
        ratio = lambda ref: (ref / ours if lower_is_better else ours / ref) if ref else None
        rs = [f"{x:11.2f}" if x is not None else f"{'-':>11}" for x in (ratio(lib), ratio(py))]
        print(f"| {name:<{w}} | {t} | {num(ours)} | {num(lib)} | {num(py)} | {rs[0]} | {rs[1][1:]} | {note} |")
    return raw


ORT_RUN = os.path.join(ROOT, "tests", "onnx", "ort_run.js")
ONNX_MODELS = "lenet,convnet,cifarnet,resnet20"
LATENCY_TARGET, THROUGHPUT_TARGET = 1.2, 1.0  # tapegrad's b1 median <= 1.2x onnxruntime's; img/s >= 1.0x


def ort_modules():
    return os.environ.get("TG_ORT_MODULES") or os.path.join(ROOT, ".cache", "onnxruntime", "node_modules")


def ort_missing():
    """Why the onnxruntime section cannot run, or None."""
    if not subprocess.run(["sh", "-c", "command -v node"], capture_output=True).stdout:
        return "node is not installed (scripts/setup.sh)"
    if not os.path.exists(os.path.join(ort_modules(), "onnxruntime-node", "package.json")):
        return f"onnxruntime-node is not installed in {ort_modules()} (scripts/setup.sh)"
    return None


def compiler_running():
    """Whether a C++ compiler (cc1plus) runs: what `pgrep cc1plus` says, read from /proc without a process."""
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/comm") as f:
                    if f.read().strip() == "cc1plus":
                        return True
            except OSError:
                pass
    return False


def wait_quiet(max_load, max_wait, what):
    """Waits (polling every 20 s, up to max_wait s) until no compiler runs and the 1-minute load average is
    below max_load; False (and a warning) when the machine did not get quiet in time."""
    start = time.monotonic()
    while True:
        load, compiling = os.getloadavg()[0], compiler_running()
        if not compiling and load < max_load:
            return True
        waited = time.monotonic() - start
        if waited >= max_wait:
            print(f"bench.py: WARNING: {what}: not quiet after {waited:.0f} s (load {load:.2f}"
                  f"{', a compiler running' if compiling else ''}); measuring anyway", file=sys.stderr)
            return False
        print(f"bench.py: {what}: waiting for a quiet machine (load {load:.2f}"
              f"{', a compiler running' if compiling else ''})", file=sys.stderr)
        time.sleep(20)


class CompilerWatch:
    """Notices a compiler (cc1plus) that runs at any moment between start and stop (polled every 2 s: a
    compilation lasts longer)."""

    def __enter__(self):
        self.seen, self._stop = compiler_running(), threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self):
        while not self._stop.wait(2):
            self.seen = self.seen or compiler_running()

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.seen = self.seen or compiler_running()


def onnx_row(model, threads, a, env, folder):
    """tapegrad's figures (bench_train --onnx) and onnxruntime's (ort_run.js --bench, batch 1 and 1000)."""
    path = os.path.join(folder, f"{model}.onnx")
    cmd = [os.path.join(BUILD, "apps", "bench_train"), "--model", model, "--threads", str(threads),
           "--onnx", path]
    # the shortest training that still gives the inference figures: one image, one step
    cmd += ["--images", "1"] if model in RANDOM_DATA_MODELS else ["--data", a.data, "--limit", "1"]
    tg = run_json(cmd, env)
    ort = {}
    for batch, iters in ((1, 1000), (1000, 10)):
        ort[batch] = run_json(["node", ORT_RUN, "--bench", path, "--batch", str(batch), "--threads",
                               str(threads), "--iters", str(iters)], env)
    return tg, ort


def run_onnx(a, env):
    """The onnxruntime section: prints its header and table, returns the raw results."""
    why = ort_missing()
    if why:
        print(f"\nonnxruntime: skipped: {why}")
        return None
    rows, raw = [], {}
    with tempfile.TemporaryDirectory(prefix="tapegrad_bench_onnx_") as folder:
        for threads in [int(t) for t in a.threads.split(",")]:
            for model in a.onnx_models.split(","):
                for attempt in range(1, 4):
                    quiet = wait_quiet(a.quiet_load, a.quiet_wait, f"{model} T={threads}")
                    load = os.getloadavg()[0]
                    with CompilerWatch() as watch:
                        tg, ort = onnx_row(model, threads, a, env, folder)
                    if not watch.seen:
                        break
                    print(f"bench.py: {model} T={threads}: a compiler ran during the measurement; "
                          f"{'measuring again' if attempt < 3 else 'kept, marked'}", file=sys.stderr)
                rows.append((model, threads, tg, ort, quiet and not watch.seen, load))
                raw[f"{model}/{threads}"] = {"tapegrad": tg, "onnxruntime": {str(b): r for b, r in ort.items()},
                                             "quiet": quiet and not watch.seen, "load_before": load}
    first = rows[0][3][1]
    session = first["session"]
    git = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"], capture_output=True, text=True)
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    print(f"\n== Against onnxruntime (inference) ==\nmachine: {cpu_model()}, {os.cpu_count()} cores; "
          f"{platform.platform()}")
    print(f"tapegrad {git.stdout.strip()}: bench_train, the eval forward as `tapegrad predict` runs it "
          "(NoGradGuard, model(x)); the same model exported with tg::save_onnx (opset 13)")
    print(f"onnxruntime {first['onnxruntime']} (onnxruntime-node, CPU execution provider, node {node}): "
          + ", ".join(f"{k} {'T' if k == 'intraOpNumThreads' else v}" for k, v in session.items())
          + "; timed through the binding's synchronous run() (ort_run.js \"direct\")")
    print("b1: one image, median and p99 of 1,000 calls after warm-up; b1000: images/s over 10 batches of "
          "1,000 (onnxruntime, after 3 warm-up) or the test set in batches of 1,000 (tapegrad: 10 for lenet and "
          "convnet, 2 for cifarnet and resnet20, after 1 warm-up)")
    print(f"ratios: onnxruntime / tapegrad times, tapegrad / onnxruntime rates (> 1: tapegrad is faster); "
          f"targets: latency ratio >= 1/{LATENCY_TARGET:g} = {1 / LATENCY_TARGET:.3f}, "
          f"throughput ratio >= {THROUGHPUT_TARGET:g}\n")
    print("| model | T | b1 median us: tapegrad | onnxruntime | ratio | b1 p99 us: tapegrad | onnxruntime | ratio "
          "| b1000 img/s: tapegrad | onnxruntime | ratio | targets |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for model, threads, tg, ort, quiet, load in rows:
        tm, tp = tg["latency_us"]["median"], tg["latency_us"]["p99"]
        om, op = ort[1]["direct"]["median_us"], ort[1]["direct"]["p99_us"]
        ti, oi = tg["infer_images_per_s"], ort[1000]["direct"]["images_per_s"]
        lat, p99, thr = om / tm, op / tp, ti / oi
        marks = ["latency ok" if lat >= 1 / LATENCY_TARGET else f"latency MISS ({tm / om:.2f}x onnxruntime's)",
                 "throughput ok" if thr >= THROUGHPUT_TARGET else f"throughput MISS ({thr:.2f}x)"]
        if not quiet:
            marks.append(f"NOT QUIET (load {load:.2f} or a compiler)")
        print(f"| {model} | {threads} | {tm:,.1f} | {om:,.1f} | {lat:.2f} | {tp:,.1f} | {op:,.1f} | {p99:.2f} "
              f"| {ti:,.0f} | {oi:,.0f} | {thr:.2f} | {'; '.join(marks)} |")
    print("\nonnxruntime through its promise API (await session.run), b1 median / p99 us: " +
          "; ".join(f"{m} T={t} {o[1]['api']['median_us']:,.1f} / {o[1]['api']['p99_us']:,.1f}"
                    for m, t, _, o, _, _ in rows))
    return raw


INT8_MODELS = "convnet,cifarnet,resnet20,mobilenetv2"
INT8_TARGET = 2.0  # int8 b1 latency and b1000 throughput at least 2x tapegrad's float32


def int8_row(model, threads, env, folder):
    """bench_int8's figures (float32 and int8 in one process) and onnxruntime's on the same float32 model."""
    path = os.path.join(folder, f"{model}.onnx")
    tg = run_json([os.path.join(BUILD, "apps", "bench_int8"), "--model", model, "--threads", str(threads),
                   "--onnx", path], env)
    ort = {}
    if not ort_missing():
        for batch, iters in ((1, 1000), (1000, 10)):
            ort[batch] = run_json(["node", ORT_RUN, "--bench", path, "--batch", str(batch), "--threads",
                                   str(threads), "--iters", str(iters)], env)
    return tg, ort


def run_int8(a, env):
    """The int8 section: prints its header and table, returns the raw results."""
    rows, raw = [], {}
    with tempfile.TemporaryDirectory(prefix="tapegrad_bench_int8_") as folder:
        for threads in [int(t) for t in a.threads.split(",")]:
            for model in a.int8_models.split(","):
                for attempt in range(1, 4):
                    quiet = wait_quiet(a.quiet_load, a.quiet_wait, f"int8 {model} T={threads}")
                    load = os.getloadavg()[0]
                    with CompilerWatch() as watch:
                        tg, ort = int8_row(model, threads, env, folder)
                    if not watch.seen:
                        break
                    print(f"bench.py: int8 {model} T={threads}: a compiler ran during the measurement; "
                          f"{'measuring again' if attempt < 3 else 'kept, marked'}", file=sys.stderr)
                rows.append((model, threads, tg, ort, quiet and not watch.seen, load))
                raw[f"{model}/{threads}"] = {"tapegrad": tg, "onnxruntime": {str(b): r for b, r in ort.items()},
                                             "quiet": quiet and not watch.seen, "load_before": load}
    git = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"], capture_output=True, text=True)
    print(f"\n== int8 inference ==\nmachine: {cpu_model()}, {os.cpu_count()} cores; {platform.platform()}")
    print(f"tapegrad {git.stdout.strip()}: bench_int8, float32 and int8 (tg::Int8Model, {rows[0][2]['kernels']} "
          "kernels) in one process; onnxruntime (float32, the same model exported) as in the onnxruntime section"
          + ("" if rows[0][3] else f" (skipped: {ort_missing()})"))
    print("b1: one image, median of 1,000 calls after 20 warm-up; b1000: images/s over 3 batches of 1,000 "
          "after 1 (tapegrad), 10 after 3 (onnxruntime); speed-ups: int8 over float32 (> 1: int8 is faster); "
          f"target: both >= {INT8_TARGET:g}\n")
    print("| model | T | b1 median us: fp32 | int8 | speed-up | b1 p99 us: fp32 | int8 | b1000 img/s: fp32 | int8 "
          "| speed-up | onnxruntime fp32: b1 us | b1000 img/s | int8 / onnxruntime: b1 | b1000 "
          "| weights KiB: fp32 | int8 | targets |")
    print("|" + "---|" * 18)
    for model, threads, tg, ort, quiet, load in rows:
        f, q = tg["fp32"], tg["int8"]
        fm, qm = f["latency_us"]["median"], q["latency_us"]["median"]
        fi, qi = f["infer_images_per_s"], q["infer_images_per_s"]
        lat, thr = fm / qm, qi / fi
        if ort:
            om, oi = ort[1]["direct"]["median_us"], ort[1000]["direct"]["images_per_s"]
            ort_cells = f"{om:,.1f} | {oi:,.0f} | {om / qm:.2f} | {qi / oi:.2f}"
        else:
            ort_cells = "- | - | - | -"
        marks = ["latency ok" if lat >= INT8_TARGET else f"latency MISS ({lat:.2f}x)",
                 "throughput ok" if thr >= INT8_TARGET else f"throughput MISS ({thr:.2f}x)"]
        if not quiet:
            marks.append(f"NOT QUIET (load {load:.2f} or a compiler)")
        print(f"| {model} | {threads} | {fm:,.1f} | {qm:,.1f} | {lat:.2f} | {f['latency_us']['p99']:,.1f} "
              f"| {q['latency_us']['p99']:,.1f} | {fi:,.0f} | {qi:,.0f} | {thr:.2f} | {ort_cells} "
              f"| {f['weight_bytes'] / 1024:,.1f} | {q['weight_bytes'] / 1024:,.1f} | {'; '.join(marks)} |")
    return raw


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--models", default="lenet,convnet,cifarnet,mobilenet,resnet20,mobilenetv2,cifarnet:adamw")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--limit", type=int, default=0, help="MNIST models: only the first N training images")
    p.add_argument("--images", type=int, default=10000)
    p.add_argument("--layers", default="", help="only the layer rows whose name matches this regex")
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--peak-gflops", type=float, default=225.0, help="FMA peak of one core, GFLOP/s")
    p.add_argument("--data", default=os.path.join(ROOT, ".cache", "mnist"))
    p.add_argument("--layers-only", action="store_true")
    p.add_argument("--train-only", action="store_true")
    blas = p.add_mutually_exclusive_group()
    blas.add_argument("--openblas-own-kernels", action="store_true")
    blas.add_argument("--openblas-both", action="store_true", help="the whole run as is, then with own kernels")
    p.add_argument("--json", help="also write all raw results here")
    p.add_argument("--bf16", action="store_true",
                   help="also train each model in bf16: tapegrad --precision bf16, libtorch and PyTorch under autocast")
    onnx = p.add_mutually_exclusive_group()
    onnx.add_argument("--onnx", action="store_true",
                      help="add the onnxruntime section to a partial run (the whole run has it)")
    onnx.add_argument("--onnx-only", action="store_true", help="only the onnxruntime section")
    p.add_argument("--onnx-models", default=ONNX_MODELS)
    int8 = p.add_mutually_exclusive_group()
    int8.add_argument("--int8", action="store_true", help="add the int8 section to a partial run (the whole run has it)")
    int8.add_argument("--int8-only", action="store_true", help="only the int8 section")
    p.add_argument("--int8-models", default=INT8_MODELS)
    p.add_argument("--quiet-load", type=float, default=0.8,
                   help="onnxruntime section: wait until the 1-minute load average is below this")
    p.add_argument("--quiet-wait", type=float, default=900, help="... for at most this many seconds")
    a = p.parse_args()
    partial = a.layers_only or a.train_only or a.onnx_only or a.int8_only
    with_onnx = a.onnx or a.onnx_only or not partial
    with_int8 = a.int8 or a.int8_only or not partial
    programs = ("bench_int8",) if a.int8_only else ("bench_train",) if a.onnx_only else ("bench_train", "bench_layers")
    for program in programs + (("bench_int8",) if with_int8 and not a.int8_only else ()):
        if not os.path.exists(os.path.join(BUILD, "apps", program)):
            sys.exit(f"bench.py: {BUILD}/apps/{program} is not built; run `make bench` (or `make bench-build`, "
                     "then this script)")

    if a.int8_only:
        raw = {}
    elif a.onnx_only:
        if ort_missing():
            sys.exit(f"bench.py: --onnx-only: {ort_missing()}")
        raw = {}
    elif a.openblas_both:
        print("== OpenBLAS as set in the environment ==")
        raw = {"as_is": run(a, False)}
        print("\n== OpenBLAS's own kernels (OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset) ==")
        raw["own_kernels"] = run(a, True)
    else:
        raw = run(a, a.openblas_own_kernels)
    if with_onnx:
        raw["onnx"] = run_onnx(a, env_for(False, a.openblas_own_kernels))
    if with_int8:
        raw["int8"] = run_int8(a, env_for(False, a.openblas_own_kernels))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(raw, f, indent=1, default=str)


if __name__ == "__main__":
    main()
