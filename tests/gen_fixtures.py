#!/usr/bin/env python3
"""PyTorch reference fixtures for tapegrad's core ops.

Regenerate with:

    /usr/bin/python3 tests/gen_fixtures.py

(from the repository root). It writes tests/fixtures/core_ops.json, which is checked in;
the C++ tests (tests/core/test_<family>.cpp, through tests/fixture_runner.hpp) only read that JSON and never need torch.

Every case records, in float32 and flat row-major order: the inputs, the op's output, a
random `grad_output` of the output's shape, and the gradient of
sum(output * grad_output) with respect to each tensor input (all inputs require grad).
Deterministic: torch.manual_seed(0), float32 throughout.
"""

import json
import os

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_PATH = os.path.join(HERE, "fixtures", "core_ops.json")


def encode(t):
    """A tensor as {"shape": [...], "data": [...]} with float32-exact floats."""
    a = t.detach().cpu().numpy().astype(np.float32)
    return {"shape": list(a.shape), "data": [float(np.float32(v)) for v in a.reshape(-1)]}


def randn(*shape):
    return torch.randn(tuple(shape), dtype=torch.float32)


def away_from_zero(*shape, margin=0.5):
    """Random values with |x| >= margin and a random sign (denominators, log of |x|)."""
    magnitude = randn(*shape).abs() + margin
    sign = torch.where(torch.rand(tuple(shape)) < 0.5, -1.0, 1.0)
    return (magnitude * sign).float()


def positive(*shape):
    return (torch.rand(tuple(shape), dtype=torch.float32) * 2.0 + 0.1).float()


def make_case(name, op, inputs, fn, **extra):
    """Run fn on leaf copies of `inputs` and record output, grad_output and grads."""
    leaves = [x.detach().clone().float().requires_grad_(True) for x in inputs]
    out = fn(*leaves)
    grad_output = randn(*out.shape)
    (out * grad_output).sum().backward()
    case = {"name": name, "op": op, "inputs": [encode(x) for x in leaves]}
    case.update(extra)
    case["output"] = encode(out)
    case["grad_output"] = encode(grad_output)
    case["grads"] = [encode(x.grad) for x in leaves]
    return case


def build_cases():
    cases = []

    # ---- binary ops with numpy broadcasting ----
    binary = {
        "add": lambda a, b: a + b,
        "sub": lambda a, b: a - b,
        "mul": lambda a, b: a * b,
        "div": lambda a, b: a / b,
    }
    shape_pairs = [
        ("same_2d", (2, 3), (2, 3)),
        ("broadcast_3d_2d", (2, 3, 4), (3, 1)),
        ("broadcast_1d_3d", (4,), (2, 1, 4)),
        ("broadcast_both", (2, 1), (1, 3)),
    ]
    for op, fn in binary.items():
        for suffix, sa, sb in shape_pairs:
            a = randn(*sa)
            b = away_from_zero(*sb) if op == "div" else randn(*sb)
            cases.append(make_case(f"{op}_{suffix}", op, [a, b], fn))

    # ---- ops with a float scalar ----
    scalar_ops = {
        "add_scalar": (2.5, lambda x, s: x + s),
        "sub_scalar": (1.75, lambda x, s: x - s),
        "rsub_scalar": (2.5, lambda x, s: s - x),
        "mul_scalar": (-1.5, lambda x, s: x * s),
        "div_scalar": (4.0, lambda x, s: x / s),
        "rdiv_scalar": (2.5, lambda x, s: s / x),
    }
    for op, (s, fn) in scalar_ops.items():
        x = away_from_zero(2, 3) if op == "rdiv_scalar" else randn(2, 3)
        cases.append(make_case(f"{op}_2d", op, [x], lambda t, fn=fn, s=s: fn(t, s), scalar=s))
    cases.append(make_case("neg_2d", "neg", [randn(2, 3)], lambda x: -x))

    # ---- matmul ----
    cases.append(make_case("matmul_3x4_4x5", "matmul", [randn(3, 4), randn(4, 5)], torch.matmul))
    cases.append(make_case("matmul_1x7_7x2", "matmul", [randn(1, 7), randn(7, 2)], torch.matmul))

    # ---- elementwise unary ----
    relu_in = away_from_zero(3, 5, margin=0.01)  # no input within 1e-3 of the kink at 0
    cases.append(make_case("relu_3x5", "relu", [relu_in], torch.relu))
    cases.append(make_case("sigmoid_3x5", "sigmoid", [randn(3, 5)], torch.sigmoid))
    cases.append(make_case("tanh_3x5", "tanh", [randn(3, 5)], torch.tanh))
    cases.append(make_case("exp_3x5", "exp", [randn(3, 5)], torch.exp))
    cases.append(make_case("log_3x5", "log", [positive(3, 5)], torch.log))

    # ---- reductions to a 0-d scalar ----
    cases.append(make_case("sum_2x3x4", "sum", [randn(2, 3, 4)], torch.sum))
    cases.append(make_case("mean_2x3x4", "mean", [randn(2, 3, 4)], torch.mean))

    # ---- shape ops ----
    cases.append(make_case("reshape_2x3x4_to_m1x4", "reshape", [randn(2, 3, 4)],
                           lambda x: torch.reshape(x, (-1, 4)), new_shape=[-1, 4]))
    cases.append(make_case("flatten_2x3x2x2", "flatten", [randn(2, 3, 2, 2)],
                           lambda x: torch.flatten(x, 1)))

    # ---- linear ----
    cases.append(make_case("linear_4x6_3x6_bias", "linear", [randn(4, 6), randn(3, 6), randn(3)],
                           F.linear))
    cases.append(make_case("linear_nobias_4x6_3x6", "linear_nobias", [randn(4, 6), randn(3, 6)],
                           lambda x, w: F.linear(x, w)))

    # ---- softmax family (last axis) ----
    for shape in [(4, 10), (2, 3, 5)]:
        tag = "x".join(map(str, shape))
        cases.append(make_case(f"log_softmax_{tag}", "log_softmax", [randn(*shape)],
                               lambda x: F.log_softmax(x, dim=-1)))
        cases.append(make_case(f"softmax_{tag}", "softmax", [randn(*shape)],
                               lambda x: F.softmax(x, dim=-1)))

    # ---- losses ----
    labels = torch.randint(0, 10, (5,))
    cases.append(make_case("cross_entropy_5x10", "cross_entropy", [randn(5, 10)],
                           lambda x: F.cross_entropy(x, labels), labels=labels.tolist()))
    labels_big = torch.randint(0, 10, (5,))
    logits_big = randn(5, 10) * 1000.0
    cases.append(make_case("cross_entropy_5x10_logits_1000", "cross_entropy", [logits_big],
                           lambda x: F.cross_entropy(x, labels_big), labels=labels_big.tolist()))
    cases.append(make_case("mse_loss_3x4", "mse_loss", [randn(3, 4), randn(3, 4)], F.mse_loss))

    # ---- logits far from 0 (appended last, so the cases above keep their random numbers) ----
    # randn logits shifted by +offset on even rows and -offset on odd rows. The log-probabilities, the
    # probabilities and every gradient stay O(1), so the runner's usual tolerance (abs 1e-5 + rel 1e-4)
    # applies unchanged; no tolerance scaled by the logits' magnitude is needed. What each offset catches
    # in a log_softmax formed as x - (max + log(sum)) in float32, where max + log(sum) rounds to the float
    # spacing near max:
    #   1e4:  spacing 2^-10 ~ 1e-3, so log-probabilities off by up to ~5e-4;
    #   1e7:  spacing 1, so they are off by up to 0.5 (and exp(y), the softmax in the backward, by ~60%);
    #   1e16: spacing 2^30 ~ 1e9, so every randn logit rounds to float32(1e16) itself: each row is a tie,
    #         PyTorch gives log(1/C) = -2.302585 and softmax 1/C, the old formula gave 0 and 1.
    for tag, offset in [("1e4", 1e4), ("1e7", 1e7), ("1e16", 1e16)]:
        def shifted(rows, cols, offset=offset):
            signs = torch.tensor([1.0 if r % 2 == 0 else -1.0 for r in range(rows)]).unsqueeze(1)
            return (randn(rows, cols).double() + signs * offset).float()
        cases.append(make_case(f"log_softmax_4x10_offset_{tag}", "log_softmax", [shifted(4, 10)],
                               lambda x: F.log_softmax(x, dim=-1)))
        cases.append(make_case(f"softmax_4x10_offset_{tag}", "softmax", [shifted(4, 10)],
                               lambda x: F.softmax(x, dim=-1)))
        labels_off = torch.randint(0, 10, (4,))
        cases.append(make_case(f"cross_entropy_4x10_offset_{tag}", "cross_entropy", [shifted(4, 10)],
                               lambda x, labels_off=labels_off: F.cross_entropy(x, labels_off),
                               labels=labels_off.tolist()))

    return cases


def check_finite(cases):
    for case in cases:
        tensors = case["inputs"] + [case["output"], case["grad_output"]] + case["grads"]
        for t in tensors:
            assert all(np.isfinite(t["data"])), f"non-finite value in case {case['name']}"


def main():
    torch.manual_seed(0)
    cases = build_cases()
    check_finite(cases)
    names = [c["name"] for c in cases]
    assert len(names) == len(set(names)), "case names must be unique"
    doc = {"generator": "tests/gen_fixtures.py", "torch_version": torch.__version__, "cases": cases}
    os.makedirs(os.path.dirname(OUT_PATH), exist_ok=True)
    with open(OUT_PATH, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {OUT_PATH}: {len(cases)} cases, {os.path.getsize(OUT_PATH)} bytes")


if __name__ == "__main__":
    main()
