#!/usr/bin/env python3
"""PyTorch reference fixtures for tapegrad's batch normalization (batch_norm2d, BatchNorm2d).

Regenerate with:

    /usr/bin/python3 tests/gen_fixtures_bn.py

(from any directory). It writes tests/fixtures/batch_norm.json, which is checked in; the C++ tests
(tests/core/test_batch_norm2d.cpp through tests/fixture_runner.hpp, tests/layers/test_batchnorm_layer.cpp)
only read it and never need torch.

* "cases": batch_norm2d op cases in conv_pool.json's format (gen_fixtures_conv.py: inputs x, weight, bias,
  the output, grad_output and the gradient of sum(output * grad_output) for each input), plus
  "options" {"eps", "momentum", "training"} and the running statistics before ("running_mean",
  "running_var") and after the call ("running_mean_after", "running_var_after"), F.batch_norm on 4-D input.
  As in gen_fixtures_conv.py the numbers are float64 PyTorch on the float32 inputs, rounded to float32, and
  each case is refused unless float32 PyTorch is within half the C++ tolerance of them.
* "module_steps": an nn.BatchNorm2d (non-default weight, bias, eps, momentum) trained on three batches of
  different sizes, then in eval mode: each batch and its output, the running statistics and
  num_batches_tracked after each step, and an eval batch with its output.

Deterministic: torch.manual_seed(0).
"""

import os

import torch
import torch.nn as nn
import torch.nn.functional as F

from gen_fixtures_conv import (MAX_FLOAT32_ERROR_RATIO, check_cases, cotangent, encode, float32_error_ratio,
                               randn, write_json)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_PATH = os.path.join(HERE, "fixtures", "batch_norm.json")


def bn_case(name, x, weight, bias, running_mean, running_var, eps=1e-5, momentum=0.1, training=True):
    """F.batch_norm in float64 (the reference) and float32 (to check the conditioning) on the same values."""
    def run(dtype):
        leaves = [t.detach().clone().to(dtype).requires_grad_(True) for t in (x, weight, bias)]
        rm, rv = running_mean.clone().to(dtype), running_var.clone().to(dtype)
        out = F.batch_norm(leaves[0], rm, rv, leaves[1], leaves[2], training=training, momentum=momentum, eps=eps)
        return leaves, out, rm, rv

    leaves, out, rm, rv = run(torch.float64)
    leaves32, out32, rm32, rv32 = run(torch.float32)
    grad_output = cotangent(out.shape, 1.0 / 32)
    (out * grad_output.double()).sum().backward()
    (out32 * grad_output).sum().backward()
    ratio = max([float32_error_ratio(out32, out), float32_error_ratio(rm32, rm), float32_error_ratio(rv32, rv)] +
                [float32_error_ratio(a.grad, b.grad) for a, b in zip(leaves32, leaves)])
    assert ratio < MAX_FLOAT32_ERROR_RATIO, f"case {name}: float32 PyTorch is {ratio:.2f} tolerances off"
    print(f"  {name}: float32 PyTorch {ratio:.3f} tolerances from the reference")
    return {"name": name, "op": "batch_norm2d",
            "options": {"eps": eps, "momentum": momentum, "training": training},
            "running_mean": encode(running_mean), "running_var": encode(running_var),
            "running_mean_after": encode(rm), "running_var_after": encode(rv),
            "inputs": [encode(t) for t in leaves], "output": encode(out), "grad_output": encode(grad_output),
            "grads": [encode(t.grad) for t in leaves]}


def stats(c):
    """Initial running statistics away from the defaults, so the update is visible."""
    return 0.5 * randn(c), torch.rand(c) + 0.5


def cases():
    out = []
    ones, zeros = torch.ones, torch.zeros
    out.append(bn_case("train_default_affine_4x2x3x3", randn(4, 2, 3, 3), ones(2), zeros(2), zeros(2), ones(2)))
    out.append(bn_case("train_2x3x4x5", 2 * randn(2, 3, 4, 5) + 1, randn(3), randn(3), *stats(3)))
    out.append(bn_case("train_eps1e-3_momentum0.3", randn(3, 2, 3, 2), randn(2), randn(2), *stats(2),
                       eps=1e-3, momentum=0.3))
    out.append(bn_case("train_batch1_1x3x3x4", randn(1, 3, 3, 4), randn(3), randn(3), *stats(3)))
    out.append(bn_case("train_1x1_pixels_5x3x1x1", randn(5, 3, 1, 1), randn(3), randn(3), *stats(3)))
    const = randn(3, 3, 2, 3)
    const[:, 1] = 0.7  # var exactly 0: the output is the bias, dx = weight / sqrt(eps) * (dy - mean(dy))
    out.append(bn_case("train_constant_channel", const, randn(3), randn(3), *stats(3)))
    out.append(bn_case("eval_2x3x4x4", randn(2, 3, 4, 4), randn(3), randn(3), *stats(3), training=False))
    out.append(bn_case("eval_batch1_eps1e-2", randn(1, 2, 3, 3), randn(2), randn(2), *stats(2), eps=1e-2,
                       training=False))
    return out


def module_steps():
    """nn.BatchNorm2d over three training batches, then eval, in float64 on float32 values."""
    bn = nn.BatchNorm2d(3, eps=1e-4, momentum=0.2).double()
    with torch.no_grad():
        bn.weight.copy_(randn(3))
        bn.bias.copy_(randn(3))
    doc = {"channels": 3, "eps": 1e-4, "momentum": 0.2, "weight": encode(bn.weight), "bias": encode(bn.bias),
           "steps": []}
    bn.train()
    for shape, shift in [((2, 3, 3, 3), 0.0), ((4, 3, 2, 2), 1.0), ((1, 3, 4, 3), -2.0)]:
        x = (randn(*shape) * 1.5 + shift).float()
        with torch.no_grad():
            y = bn(x.double())
        doc["steps"].append({"x": encode(x), "output": encode(y), "running_mean": encode(bn.running_mean),
                             "running_var": encode(bn.running_var),
                             "num_batches_tracked": int(bn.num_batches_tracked)})
    bn.eval()
    x = randn(2, 3, 2, 2)
    with torch.no_grad():
        doc["eval"] = {"x": encode(x), "output": encode(bn(x.double()))}
    return doc


def main():
    torch.manual_seed(0)
    all_cases = cases()
    check_cases(all_cases)
    doc = {"generator": "tests/gen_fixtures_bn.py", "torch_version": torch.__version__, "cases": all_cases,
           "module_steps": module_steps()}
    size = write_json(OUT_PATH, doc)
    print(f"wrote {OUT_PATH}: {len(all_cases)} cases, {size} bytes")


if __name__ == "__main__":
    main()
