#!/usr/bin/env python3
"""PyTorch reference fixtures for tapegrad's convolution, max pooling and a small Sequential CNN.

Regenerate with:

    /usr/bin/python3 tests/gen_fixtures_conv.py

(from any directory). It writes two checked-in files that the C++ tests
(tests/core/test_conv2d.cpp, tests/core/test_max_pool2d.cpp through tests/fixture_runner.hpp, and tests/layers/test_sequential.cpp) read without ever needing torch:

* tests/fixtures/conv_pool.json -- op cases in the format of core_ops.json: float32 tensors as
  {"shape": [...], "data": [...flat row-major...]}; each case records its inputs, an "options"
  object (stride/padding/dilation or kernel/stride/padding), the op's output, a random
  `grad_output` of the output's shape, and the gradient of sum(output * grad_output) with respect
  to every input (all inputs require grad).
* tests/fixtures/small_cnn.json -- an nn.Sequential CNN in eval mode: its state_dict (in order),
  an input batch, labels, the logits, the mean cross-entropy loss, the gradient of that loss for
  every parameter (by state_dict key) and for the input.

Deterministic: torch.manual_seed(0); every stored tensor is float32; non-finite values are refused.

Precision: inputs and weights are float32 values; the recorded outputs and gradients are PyTorch's
float64 results on those exact values, rounded to float32, so the reference carries no float32
accumulation error of its own. Each case is also run in float32 and refused unless float32 PyTorch
is within half the C++ tolerance (|a - b| <= 1e-5 + 1e-4 |b|) of the reference everywhere: a
sound float32 implementation passes, however it orders its sums. (A 1250-term weight-gradient
sum with unit-size cotangents is not that well conditioned; hence the small cotangents below.)

Size: each file is kept under 600,000 bytes (generation fails otherwise). Floats are written as
the shortest decimal that parses (as a double, then rounded to float32, which is what
nlohmann::json + get<float> does) back to the exact float32 value, integral values as JSON
integers; every value is verified bit for bit before writing. To fit the budget:
* `grad_output` cotangents are random nonzero {-3..3} times a power of two: 1/32 for float
  cases, 1 for the exact (dyadic and max-pool) cases;
* the two large conv cases (1x3x28x28 stride 2, and 128 filters) use "dyadic" inputs (x integers,
  w and b multiples of 1/4; names end in _dyadic), so their sums are exact in float32;
* the large max-pool case uses a 4x3x28x28 input of distinct shuffled integers (no ties) instead
  of 32x3x28x28.
The seed conv case, the other conv cases, conv-then-pool, the small pool cases and the CNN use
ordinary normal floats.
"""

import copy
import json
import os
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
CONV_POOL_PATH = os.path.join(HERE, "fixtures", "conv_pool.json")
SMALL_CNN_PATH = os.path.join(HERE, "fixtures", "small_cnn.json")
MAX_BYTES = 600_000
ABS_TOL, REL_TOL = 1e-5, 1e-4  # as tests/fixture_runner.hpp: |a - b| <= 1e-5 + 1e-4 * |b|
MAX_FLOAT32_ERROR_RATIO = 0.5
FLOAT32_ERROR_RATIOS = {}  # case name -> how far float32 PyTorch is from the reference, in tolerances


# ---- float32 encoding ------------------------------------------------------------------------------


def short_float(v):
    """A JSON number that parses (as a double, then cast to float32) back to exactly float32 `v`.

    json.dump writes ints as digits and floats as repr(). Integral values (|v| < 2^24, not -0.0)
    become ints. Others use the shortest decimal that identifies the float32, accepted only after
    checking that exact path (double -> float32) gives `v` back; otherwise the double holding `v`
    exactly (repr of float(np.float32)). write_json() re-verifies every value bit for bit.
    """
    f32 = np.float32(v)
    if not np.isfinite(f32):
        raise ValueError(f"non-finite value {f32!r}")
    if f32 == np.floor(f32) and abs(f32) < 2.0**24 and not (f32 == 0 and np.signbit(f32)):
        return int(f32)
    short = float(str(f32))  # numpy's shortest round-trip string for a float32
    if np.float32(float(repr(short))) == f32:
        return short
    return float(f32)


def encode(t):
    """A tensor as {"shape": [...], "data": [...]}; every value float32-exact after parsing."""
    a = t.detach().cpu().numpy().astype(np.float32)
    if not np.all(np.isfinite(a)):
        raise ValueError("non-finite value in a tensor to encode")
    return {"shape": list(a.shape), "data": [short_float(v) for v in a.reshape(-1)]}


def randn(*shape):
    return torch.randn(tuple(shape), dtype=torch.float32)


def cotangent(shape, scale):
    """A random grad_output: {-3, -2, -1, 1, 2, 3} * scale, scale a power of 2 (short to write, no zeros)."""
    magnitude = torch.randint(1, 4, tuple(shape)).float()
    sign = torch.where(torch.rand(tuple(shape)) < 0.5, -1.0, 1.0)
    return (magnitude * sign * scale).float()


def small_ints(lo, hi, *shape):
    """Integers in [lo, hi] as float32."""
    return torch.randint(lo, hi + 1, tuple(shape)).float()


def quarters(*shape):
    """Multiples of 1/4 in [-1.5, 1.5] as float32."""
    return (torch.randint(-6, 7, tuple(shape)).float() / 4.0).float()


def float32_error_ratio(approx, exact):
    """max |approx - exact| / (kAbsTol + kRelTol * |exact|), the C++ test's criterion (< 1 passes)."""
    exact = exact.detach().double()
    err = (approx.detach().double() - exact).abs() / (ABS_TOL + REL_TOL * exact.abs())
    return err.max().item() if err.numel() else 0.0


def make_case(name, op, inputs, fn, options, cotangent_scale=1.0 / 32, **extra):
    """Run fn on `inputs` (float32 values) and record output, grad_output and grads.

    The recorded numbers are PyTorch's float64 results on those exact float32 values, rounded to
    float32: the reference carries no float32 rounding of its own. The same computation in float32
    must be within half the C++ tolerance of it (so any sound float32 implementation passes), else
    the case is refused as ill-conditioned.
    """
    leaves = [x.detach().clone().double().requires_grad_(True) for x in inputs]
    leaves32 = [x.detach().clone().float().requires_grad_(True) for x in inputs]
    out, out32 = fn(*leaves), fn(*leaves32)
    grad_output = cotangent(out.shape, cotangent_scale)
    (out * grad_output.double()).sum().backward()
    (out32 * grad_output).sum().backward()
    ratio = max([float32_error_ratio(out32, out)] +
                [float32_error_ratio(a.grad, b.grad) for a, b in zip(leaves32, leaves)])
    assert ratio < MAX_FLOAT32_ERROR_RATIO, f"case {name}: float32 PyTorch is {ratio:.2f} tolerances off"
    case = {"name": name, "op": op, "options": options}
    case.update(extra)
    case["inputs"] = [encode(x) for x in leaves]
    case["output"] = encode(out)
    case["grad_output"] = encode(grad_output)
    case["grads"] = [encode(x.grad) for x in leaves]
    FLOAT32_ERROR_RATIOS[name] = ratio
    return case


# ---- conv2d ----------------------------------------------------------------------------------------


def conv_case(name, x_shape, w_shape, stride=(1, 1), padding=(0, 0), dilation=(1, 1), bias=True,
              dyadic=False):
    """A conv2d case; padding is a pair or the string "same" (PyTorch padding='same', stride 1).

    Inputs are normal floats (w scaled by 0.5), or with dyadic=True: x integers in [-3, 3], w and b
    multiples of 1/4. Dyadic cases are exact in float32 and short to write; large cases use them to
    stay within the size budget.
    """
    if dyadic:
        x, w, b = small_ints(-3, 3, *x_shape), quarters(*w_shape), quarters(w_shape[0])
    else:
        x, w, b = randn(*x_shape), randn(*w_shape) * 0.5, randn(w_shape[0])
    inputs = [x, w] + ([b] if bias else [])
    options = {"stride": list(stride), "padding": padding if padding == "same" else list(padding),
               "dilation": list(dilation), "bias": bias}

    def fn(x, w, b=None):
        return F.conv2d(x, w, b, stride=tuple(stride),
                        padding=padding if padding == "same" else tuple(padding),
                        dilation=tuple(dilation))

    return make_case(name, "conv2d", inputs, fn, options, cotangent_scale=1.0 if dyadic else 1.0 / 32)


def conv_cases():
    return [
        conv_case("conv_2x3x28x28_w4x3x4x4_valid", (2, 3, 28, 28), (4, 3, 4, 4)),
        conv_case("conv_1x3x28x28_w4x3x2x2_stride2_dyadic", (1, 3, 28, 28), (4, 3, 2, 2), stride=(2, 2),
                  dyadic=True),
        # 128 output channels: output 4x128x6x5.
        conv_case("conv_4x3x12x10_w128x3x3x3_stride2_pad1_dyadic", (4, 3, 12, 10), (128, 3, 3, 3),
                  stride=(2, 2), padding=(1, 1), dyadic=True),
        conv_case("conv_2x2x9x9_w3x2x3x3_dilation2_pad2", (2, 2, 9, 9), (3, 2, 3, 3),
                  padding=(2, 2), dilation=(2, 2)),
        conv_case("conv_2x3x10x9_w5x3x3x2_stride2x1_pad1x0", (2, 3, 10, 9), (5, 3, 3, 2),
                  stride=(2, 1), padding=(1, 0)),
        conv_case("conv_1x2x7x7_w3x2x3x3_nobias", (1, 2, 7, 7), (3, 2, 3, 3), bias=False),
        conv_case("conv_2x2x8x8_w3x2x3x3_same_odd_kernel", (2, 2, 8, 8), (3, 2, 3, 3), padding="same"),
        # Even kernel: total padding 3 per axis; PyTorch pads total//2 = 1 before and 2 after.
        conv_case("conv_1x2x7x6_w2x2x4x4_same_even_kernel", (1, 2, 7, 6), (2, 2, 4, 4), padding="same"),
    ]


# ---- max_pool2d ------------------------------------------------------------------------------------


def distinct_ints(*shape):
    """A random permutation of the integers -n/2 .. n/2-1 (n = number of elements), as float32."""
    n = int(np.prod(shape))
    return (torch.randperm(n) - n // 2).float().reshape(shape)


def pool_case(name, x, kernel, stride, padding=(0, 0), **extra):
    options = {"kernel": list(kernel), "stride": list(stride), "padding": list(padding)}

    def fn(x):
        return F.max_pool2d(x, kernel_size=tuple(kernel), stride=tuple(stride), padding=tuple(padding))

    # max pooling only selects and adds cotangents: integer cotangents keep it exact.
    return make_case(name, "max_pool2d", [x], fn, options, cotangent_scale=1.0, **extra)


def pool_cases():
    cases = [
        # 32x3x28x28 would not fit the ~600 KB budget; 4x3x28x28 is the agreed minimum. Its values are
        # distinct integers (a shuffled range): no ties, and short to write.
        pool_case("pool_4x3x28x28_k4_s2_distinct", distinct_ints(4, 3, 28, 28), (4, 4), (2, 2)),
        pool_case("pool_1x2x3x3_k2_s2", randn(1, 2, 3, 3), (2, 2), (2, 2)),
        # PyTorch pads with -inf: a window hanging over the border never picks the padding.
        pool_case("pool_2x3x9x9_k3_s2_pad1", randn(2, 3, 9, 9), (3, 3), (2, 2), padding=(1, 1)),
        pool_case("pool_2x2x7x9_k2x3_s1x2", randn(2, 2, 7, 9), (2, 3), (1, 2)),
    ]
    # Ties: values in {0, 1, 2}, so most windows hold several equal maxima. PyTorch (CPU) routes the
    # gradient to the first maximum in the window's row-major scan order.
    ties_a = torch.randint(0, 3, (2, 2, 6, 6)).float()
    cases.append(pool_case("pool_ties_2x2x6x6_k2_s2", ties_a, (2, 2), (2, 2), ties=True))
    ties_b = torch.randint(0, 3, (2, 2, 6, 6)).float()
    cases.append(pool_case("pool_ties_2x2x6x6_k3_s1_overlapping", ties_b, (3, 3), (1, 1), ties=True))

    # conv (4 filters 2x2, stride 2) then max pool 2x2 stride 2: 1x3x28x28 -> 1x4x14x14 -> 1x4x7x7.
    x, w, b = randn(1, 3, 28, 28), randn(4, 3, 2, 2) * 0.5, randn(4)
    options = {"conv": {"stride": [2, 2], "padding": [0, 0], "dilation": [1, 1]},
               "pool": {"kernel": [2, 2], "stride": [2, 2], "padding": [0, 0]}}

    def conv_then_pool(x, w, b):
        return F.max_pool2d(F.conv2d(x, w, b, stride=2), kernel_size=2, stride=2)

    cases.append(make_case("conv_1x3x28x28_w4x3x2x2_s2_then_pool_k2_s2", "conv2d_then_pool", [x, w, b],
                           conv_then_pool, options))
    return cases


# ---- the small CNN -----------------------------------------------------------------------------------


def small_cnn_doc():
    """The CNN's numbers, computed in float64 from its float32 weights and input (as make_case)."""
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3), nn.Tanh(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(24, 16), nn.LeakyReLU(0.01), nn.Dropout(0.5),
        nn.Linear(16, 10))
    model.eval()
    x = randn(3, 1, 12, 12)
    labels = torch.randperm(10)[:3]  # three distinct classes
    state = model.state_dict()  # float32, PyTorch's default initialization
    assert list(state.keys()) == [k for k, _ in model.named_parameters()]

    def run(dtype):
        m = copy.deepcopy(model).to(dtype)
        xi = x.clone().to(dtype).requires_grad_(True)
        logits = m(xi)
        loss = F.cross_entropy(logits, labels)
        loss.backward()
        grads = {k: p.grad for k, p in m.named_parameters()}
        return logits, loss, grads, xi.grad

    logits, loss, grads, input_grad = run(torch.float64)
    logits32, loss32, grads32, input_grad32 = run(torch.float32)
    ratio = max([float32_error_ratio(logits32, logits), float32_error_ratio(loss32, loss),
                 float32_error_ratio(input_grad32, input_grad)] +
                [float32_error_ratio(grads32[k], grads[k]) for k in grads])
    assert ratio < MAX_FLOAT32_ERROR_RATIO, f"small CNN: float32 PyTorch is {ratio:.2f} tolerances off"
    FLOAT32_ERROR_RATIOS["small_cnn"] = ratio
    return {
        "generator": "tests/gen_fixtures_conv.py",
        "torch_version": torch.__version__,
        "model": ("Sequential(Conv2d(1,4,3,padding=1), ReLU, MaxPool2d(2), Conv2d(4,6,3), Tanh, "
                  "MaxPool2d(2), Flatten, Linear(24,16), LeakyReLU(0.01), Dropout(0.5), Linear(16,10)); "
                  "eval mode; PyTorch default initialization; loss F.cross_entropy (mean)"),
        "state_dict": [{"name": k, **encode(v)} for k, v in state.items()],
        "input": encode(x),
        "labels": labels.tolist(),
        "logits": encode(logits),
        "loss": short_float(loss.item()),
        "grads": {k: encode(g) for k, g in grads.items()},
        "input_grad": encode(input_grad),
    }


# ---- writing and verifying ---------------------------------------------------------------------------


def all_tensors(obj):
    """Every {"shape", "data"} object nested in obj."""
    if isinstance(obj, dict):
        if "shape" in obj and "data" in obj:
            yield obj
        for v in obj.values():
            yield from all_tensors(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from all_tensors(v)


def write_json(path, doc):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    text = json.dumps(doc, separators=(",", ":"), allow_nan=False) + "\n"
    size = len(text.encode())
    assert size <= MAX_BYTES, f"{path} would be {size} bytes, over the {MAX_BYTES} budget"
    # Check every value parses (double, then float32) to exactly what we meant to store.
    back = json.loads(text)
    for want, got in zip(all_tensors(doc), all_tensors(back)):
        w = np.asarray(want["data"], dtype=np.float64).astype(np.float32)
        g = np.asarray(got["data"], dtype=np.float64).astype(np.float32)
        assert want["shape"] == got["shape"] and w.size == int(np.prod(want["shape"]))
        assert np.array_equal(w.view(np.uint32), g.view(np.uint32)), f"float32 round trip failed in {path}"
    with open(path, "w") as f:
        f.write(text)
    return size


def check_cases(cases):
    names = [c["name"] for c in cases]
    assert len(names) == len(set(names)), "case names must be unique"
    for case in cases:
        for t in case["inputs"] + [case["output"], case["grad_output"]] + case["grads"]:
            assert all(np.isfinite(t["data"])), f"non-finite value in case {case['name']}"
        assert any(v != 0 for g in case["grads"] for v in g["data"]), f"all-zero grads in {case['name']}"


def main():
    # PyTorch notes that an even kernel with padding='same' pads a copy of the input: expected here.
    warnings.filterwarnings("ignore", message="Using padding='same' with even kernel lengths")
    torch.manual_seed(0)
    cases = conv_cases() + pool_cases()
    check_cases(cases)
    conv_pool = {"generator": "tests/gen_fixtures_conv.py", "torch_version": torch.__version__, "cases": cases}
    size = write_json(CONV_POOL_PATH, conv_pool)
    print(f"wrote {CONV_POOL_PATH}: {len(cases)} cases, {size} bytes")

    cnn = small_cnn_doc()
    size = write_json(SMALL_CNN_PATH, cnn)
    print(f"wrote {SMALL_CNN_PATH}: {len(cnn['state_dict'])} parameters, loss {cnn['loss']}, {size} bytes")
    print("float32 PyTorch vs the float64 reference, in C++ tolerances (must be < "
          f"{MAX_FLOAT32_ERROR_RATIO}):")
    for name, ratio in FLOAT32_ERROR_RATIOS.items():
        print(f"  {ratio:6.3f}  {name}")


if __name__ == "__main__":
    main()
