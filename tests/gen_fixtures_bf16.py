#!/usr/bin/env python3
"""PyTorch reference fixtures for tapegrad's bf16 mixed-precision conv2d (docs/precision.md).

Regenerate with:

    /usr/bin/python3 tests/gen_fixtures_bf16.py

(from any directory). It writes tests/fixtures/bf16_conv.json, read by tests/core/test_conv2d_bf16.cpp. Each
case holds float32 inputs x, w, b and a grad_output g, and what tapegrad's bf16 conv must give for them:
  - "output", "grads": PyTorch's float64 conv and its autograd on x, w and g rounded to bfloat16 by PyTorch
    (Tensor.bfloat16(), round to nearest even), b and db in float32: the products of bf16 values summed
    exactly, which tapegrad's float32 sums must match to float32 accuracy;
  - "autocast_output": what PyTorch's torch.autocast("cpu", dtype=torch.bfloat16) computes for the same conv
    (oneDNN's bf16 conv, its output rounded to bf16): tapegrad's float32 output rounded to bf16 must be
    within one bf16 step of it.
Deterministic: torch.manual_seed(0).
"""

import os

import torch
import torch.nn.functional as F

import gen_fixtures_conv as conv

BF16_PATH = os.path.join(conv.HERE, "fixtures", "bf16_conv.json")


def bf16_case(name, x_shape, c_out, kernel, padding=(0, 0), dilation=(1, 1)):
    w_shape = (c_out, x_shape[1]) + tuple(kernel)
    x, w, b = conv.randn(*x_shape), conv.randn(*w_shape) * 0.5, conv.randn(c_out)
    options = {"stride": [1, 1], "padding": list(padding), "dilation": list(dilation), "bias": True}

    def fn(x, w, b):
        return F.conv2d(x, w, b, padding=tuple(padding), dilation=tuple(dilation))

    out_shape = fn(x, w, b).shape
    g = conv.cotangent(out_shape, 1.0 / 32) * (1 + torch.rand(out_shape) / 7)  # not all bf16-exact
    leaves = [x.bfloat16().double().requires_grad_(True), w.bfloat16().double().requires_grad_(True),
              b.double().requires_grad_(True)]
    out = fn(*leaves)
    (out * g.bfloat16().double()).sum().backward()
    db = g.double().sum(dim=(0, 2, 3))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        autocast_out = fn(x, w, b)
    assert autocast_out.dtype == torch.bfloat16
    return {"name": name, "op": "conv2d", "options": options,
            "inputs": [conv.encode(x), conv.encode(w), conv.encode(b)],
            "output": conv.encode(out), "grad_output": conv.encode(g),
            "grads": [conv.encode(leaves[0].grad), conv.encode(leaves[1].grad), conv.encode(db)],
            "autocast_output": conv.encode(autocast_out.float())}


def main():
    torch.manual_seed(0)
    cases = [
        bf16_case("bf16_2x3x8x8_w8x3x3x3_pad1", (2, 3, 8, 8), 8, (3, 3), padding=(1, 1)),
        bf16_case("bf16_1x10x6x6_w8x10x3x3_pad1", (1, 10, 6, 6), 8, (3, 3), padding=(1, 1)),
        bf16_case("bf16_2x5x9x8_w7x5x3x2_dilation2_pad2x1", (2, 5, 9, 8), 7, (3, 2), padding=(2, 1),
                  dilation=(2, 2)),
        bf16_case("bf16_1x1x10x10_w6x1x5x5_valid", (1, 1, 10, 10), 6, (5, 5)),
    ]
    doc = {"generator": "tests/gen_fixtures_bf16.py", "torch_version": torch.__version__, "cases": cases}
    size = conv.write_json(BF16_PATH, doc)
    print(f"wrote {BF16_PATH}: {len(cases)} cases, {size} bytes")


if __name__ == "__main__":
    main()
