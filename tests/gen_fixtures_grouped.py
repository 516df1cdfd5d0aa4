#!/usr/bin/env python3
"""PyTorch reference fixtures for tapegrad's grouped and depthwise conv2d (the `groups` option).

Regenerate with:

    /usr/bin/python3 tests/gen_fixtures_grouped.py

(from any directory). It writes tests/fixtures/grouped_conv.json, read by tests/core/test_conv2d_grouped.cpp
through tests/fixture_runner.hpp: conv2d cases in the format and precision of gen_fixtures_conv.py (whose
helpers it reuses: float64 references on float32 inputs, float32 PyTorch checked to lie within half the C++
tolerance), with "groups" in the options. Weights are [Cout, Cin/groups, Kh, Kw], as F.conv2d takes them.
Deterministic: torch.manual_seed(0).
"""

import os

import torch
import torch.nn.functional as F

import gen_fixtures_conv as conv

GROUPED_PATH = os.path.join(conv.HERE, "fixtures", "grouped_conv.json")
MAX_BYTES = 100_000


def grouped_case(name, x_shape, c_out, kernel, groups, stride=(1, 1), padding=(0, 0), dilation=(1, 1),
                 bias=True):
    """A conv2d case with `groups`; x normal, w normal * 0.5, b normal."""
    w_shape = (c_out, x_shape[1] // groups) + tuple(kernel)
    x, w, b = conv.randn(*x_shape), conv.randn(*w_shape) * 0.5, conv.randn(c_out)
    inputs = [x, w] + ([b] if bias else [])
    options = {"stride": list(stride), "padding": list(padding), "dilation": list(dilation), "bias": bias,
               "groups": groups}

    def fn(x, w, b=None):
        return F.conv2d(x, w, b, stride=tuple(stride), padding=tuple(padding), dilation=tuple(dilation),
                        groups=groups)

    return conv.make_case(name, "conv2d", inputs, fn, options)


def grouped_cases():
    return [
        # the generic grouped path
        grouped_case("grouped_1x4x7x7_w6x2x3x3_g2", (1, 4, 7, 7), 6, (3, 3), 2),
        grouped_case("grouped_2x8x6x5_w8x2x3x3_g4_pad1_nobias", (2, 8, 6, 5), 8, (3, 3), 4, padding=(1, 1),
                     bias=False),
        grouped_case("grouped_1x4x9x8_w4x2x3x2_g2_stride2_pad1x0", (1, 4, 9, 8), 4, (3, 2), 2, stride=(2, 2),
                     padding=(1, 0)),
        # depthwise: groups = Cin = Cout
        grouped_case("depthwise_2x3x6x6_w3x1x3x3_pad1", (2, 3, 6, 6), 3, (3, 3), 3, padding=(1, 1)),
        grouped_case("depthwise_2x4x9x7_w4x1x3x3_stride2_pad1", (2, 4, 9, 7), 4, (3, 3), 4, stride=(2, 2),
                     padding=(1, 1)),
        grouped_case("depthwise_1x3x9x9_w3x1x3x3_dilation2_pad2_nobias", (1, 3, 9, 9), 3, (3, 3), 3,
                     padding=(2, 2), dilation=(2, 2), bias=False),
        grouped_case("depthwise_2x2x6x7_w2x1x2x3_valid", (2, 2, 6, 7), 2, (2, 3), 2),
        # channel multiplier 2: groups = Cin, Cout = 2 Cin
        grouped_case("depthwise_multiplier2_1x3x7x7_w6x1x3x3_pad1", (1, 3, 7, 7), 6, (3, 3), 3, padding=(1, 1)),
    ]


def main():
    torch.manual_seed(0)
    cases = grouped_cases()
    conv.check_cases(cases)
    doc = {"generator": "tests/gen_fixtures_grouped.py", "torch_version": torch.__version__, "cases": cases}
    conv.MAX_BYTES = MAX_BYTES
    size = conv.write_json(GROUPED_PATH, doc)
    print(f"wrote {GROUPED_PATH}: {len(cases)} cases, {size} bytes")
    print("float32 PyTorch vs the float64 reference, in C++ tolerances (must be < "
          f"{conv.MAX_FLOAT32_ERROR_RATIO}):")
    for name, ratio in conv.FLOAT32_ERROR_RATIOS.items():
        print(f"  {ratio:6.3f}  {name}")


if __name__ == "__main__":
    main()
