#!/usr/bin/env python3
"""PyTorch reference fixtures for the ops that tests/gen_fixtures.py does not cover: leaky_relu and dropout.

Regenerate with:

    /usr/bin/python3 tests/gen_fixtures_extra.py

(from the repository root). It writes tests/fixtures/extra_ops.json, which is checked in; the C++ tests
(tests/core/test_elementwise.cpp, through tests/fixture_runner.hpp) only read that JSON and never need torch.

The case format is core_ops.json's (see gen_fixtures.py): inputs, the op's output, a random grad_output and
the gradient of sum(output * grad_output) with respect to each input, in float32, flat row-major.

dropout: PyTorch draws its mask from its own generator, so only what is deterministic is recorded: p = 0 in
training mode (the identity, every gradient passed through). The 1 / (1 - p) scaling of kept elements is
checked in C++ (test_elementwise.cpp), where tapegrad's mask is known.
Deterministic: torch.manual_seed(0), float32 throughout.
"""

import json
import os

import torch
import torch.nn.functional as F

from gen_fixtures import away_from_zero, make_case, randn  # same encoding and case format as core_ops.json

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_PATH = os.path.join(HERE, "fixtures", "extra_ops.json")


def cases():
    out = []
    for shape, slope in [((3, 5), 0.01), ((2, 3, 4), 0.2)]:
        name = "leaky_relu_" + "x".join(map(str, shape)) + "_slope" + str(slope)
        out.append(make_case(name, "leaky_relu", [away_from_zero(*shape, margin=0.1)],
                             lambda x, s=slope: F.leaky_relu(x, negative_slope=s), slope=slope))
    for shape in [(4, 6), (2, 3, 4, 4)]:
        name = "dropout_p0_train_" + "x".join(map(str, shape))
        out.append(make_case(name, "dropout", [randn(*shape)], lambda x: F.dropout(x, p=0.0, training=True), p=0.0))
    return out


def main():
    torch.manual_seed(0)
    doc = {"generator": "tests/gen_fixtures_extra.py", "torch_version": torch.__version__, "cases": cases()}
    with open(OUT_PATH, "w") as f:
        json.dump(doc, f, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {len(doc['cases'])} cases to {OUT_PATH}")


if __name__ == "__main__":
    main()
