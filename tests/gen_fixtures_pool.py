#!/usr/bin/env python3
"""PyTorch reference fixtures for tapegrad's average pooling: avg_pool2d and global_avg_pool2d.

Regenerate with:

    /usr/bin/python3 tests/gen_fixtures_pool.py

(from the repository root). It writes tests/fixtures/avg_pool.json, which is checked in; the C++ tests
(tests/core/test_avg_pool2d.cpp, through tests/fixture_runner.hpp) only read that JSON and never need torch.

The case format is core_ops.json's (see gen_fixtures.py): inputs, the op's output, a random grad_output and
the gradient of sum(output * grad_output) with respect to each input, in float32, flat row-major.

avg_pool2d is nn.AvgPool2d with its defaults (count_include_pad=True, ceil_mode=False): "options" holds
kernel, stride and padding as [h, w]. global_avg_pool2d is nn.AdaptiveAvgPool2d(1) then flatten(1).
Deterministic: torch.manual_seed(0), float32 throughout.
"""

import json
import os

import torch
import torch.nn.functional as F

from gen_fixtures import make_case, randn  # same encoding and case format as core_ops.json

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_PATH = os.path.join(HERE, "fixtures", "avg_pool.json")


def avg_case(shape, kernel, stride, padding=(0, 0)):
    name = "avg_pool_{}_k{}x{}_s{}x{}_p{}x{}".format("x".join(map(str, shape)), *kernel, *stride, *padding)
    options = {"kernel": list(kernel), "stride": list(stride), "padding": list(padding)}
    pool = torch.nn.AvgPool2d(tuple(kernel), stride=tuple(stride), padding=tuple(padding))
    return make_case(name, "avg_pool2d", [randn(*shape)], pool, options=options)


def global_case(shape):
    head = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    return make_case("global_avg_pool_" + "x".join(map(str, shape)), "global_avg_pool2d", [randn(*shape)], head)


def cases():
    out = [
        avg_case((2, 2, 6, 6), (2, 2), (2, 2)),  # the usual downsampling
        avg_case((1, 2, 7, 5), (2, 2), (2, 2)),  # odd sizes: the last row and column are dropped
        avg_case((1, 2, 9, 9), (3, 3), (2, 2)),  # overlapping windows
        avg_case((1, 2, 7, 8), (3, 3), (2, 2), (1, 1)),  # overlap and padding (counted in the divisor)
        avg_case((1, 2, 6, 7), (2, 2), (2, 2), (1, 1)),  # padding with a non-overlapping window
        avg_case((1, 2, 7, 9), (2, 3), (1, 2)),  # rectangular kernel, stride != kernel
        avg_case((1, 2, 8, 7), (3, 2), (2, 3), (1, 1)),  # rectangular kernel and padding, stride > kernel
        avg_case((1, 1, 5, 5), (5, 5), (1, 1)),  # one window over the whole image
        avg_case((1, 2, 3, 4), (1, 1), (2, 1)),  # 1x1 windows: subsampling
        avg_case((2, 1, 4, 4), (4, 4), (1, 1), (2, 2)),  # padding of half the kernel
    ]
    out += [global_case(s) for s in [(2, 3, 4, 4), (1, 3, 5, 7), (3, 2, 1, 1), (1, 1, 9, 9)]]
    return out


def main():
    torch.manual_seed(0)
    doc = {"generator": "tests/gen_fixtures_pool.py", "torch_version": torch.__version__, "cases": cases()}
    with open(OUT_PATH, "w") as f:
        json.dump(doc, f, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {len(doc['cases'])} cases to {OUT_PATH}")


if __name__ == "__main__":
    main()
