#!/usr/bin/env python3
"""PyTorch reference trajectories for tapegrad's Adam and AdamW (optim/adam.hpp).

Regenerate with:

    /usr/bin/python3 tests/gen_fixtures_adam.py

(from the repository root). It writes tests/fixtures/adam_trajectories.json (checked in): 20 steps of
torch.optim.Adam and torch.optim.AdamW (PyTorch's defaults foreach=None on CPU tensors, i.e. the
single-tensor loop, amsgrad/maximize/capturable False) for six option sets each, on three small
parameters, with every parameter's value after every step and the optimizers' final state.

The gradients do not come from a loss: they are drawn once (torch.manual_seed(0)) and recorded per step in
the fixture, so the C++ test feeds exactly the same gradients whatever its parameters are. A gradient of
null means the parameter has no gradient at that step (p.grad is None): PyTorch then skips it and its step
count stays behind, which tapegrad must do too. Parameter "b" has an element whose gradient is always 0,
parameter "s" gets tiny gradients (~1e-4, so eps matters) and no gradient for the first three steps.

All hyperparameters are float32 values (tapegrad's options are floats), written as such. Values are written
as the shortest decimal that reads back as the same float32, to keep the file small.
The C++ test (tests/optim/test_adam.cpp) only reads the file and never needs torch.
"""

import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ADAM_PATH = os.path.join(HERE, "fixtures", "adam_trajectories.json")

STEPS = 20
NO_GRAD_STEPS_OF_S = 3  # "s" has p.grad None for steps 1..3


def f32(x):
    """x rounded to float32, as a Python float (what a C++ float option holds)."""
    return float(np.float32(x))


# (name, kind, options); options not named take the optimizer's defaults (PyTorch's, and tapegrad's).
DEFAULTS = {"adam": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0),
            "adamw": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2)}
CONFIGS = []
for kind in ("adam", "adamw"):
    CONFIGS += [
        (f"{kind}_defaults", kind, {}),
        (f"{kind}_weight_decay0.1", kind, dict(weight_decay=0.1)),
        (f"{kind}_eps1e-3", kind, dict(eps=1e-3)),
        (f"{kind}_betas0.8_0.99", kind, dict(betas=(0.8, 0.99))),
        (f"{kind}_lr1e-2", kind, dict(lr=1e-2)),
        (f"{kind}_mix", kind, dict(lr=5e-3, betas=(0.85, 0.995), eps=1e-6, weight_decay=0.05)),
    ]


def short(v):
    """A float32 as the shortest decimal that reads back as the same float32 (checked)."""
    x = float(repr(np.float32(v)))
    assert np.float32(x) == np.float32(v), (v, x)
    return x


def encode(t):
    a = t.detach().cpu().numpy().astype(np.float32)
    return {"shape": list(a.shape), "data": [short(v) for v in a.reshape(-1)]}


def initial_parameters():
    torch.manual_seed(0)
    return {"W": torch.randn(2, 3) * 0.5, "b": torch.randn(4) * 0.5, "s": torch.randn(2) * 0.5}


def gradients(params):
    """Per step, per parameter: a gradient tensor or None."""
    torch.manual_seed(1)
    steps = []
    for step in range(STEPS):
        g = {"W": torch.randn(2, 3),
             "b": torch.randn(4) * 0.1,
             "s": torch.randn(2) * 1e-4}
        g["b"][2] = 0.0  # always zero: Adam's denominator is then eps alone
        if step < NO_GRAD_STEPS_OF_S:
            g["s"] = None
        steps.append({name: g[name] for name in params})
    return steps


def trajectory(kind, options, params0, grads):
    params = {name: p.clone().requires_grad_(True) for name, p in params0.items()}
    cls = torch.optim.Adam if kind == "adam" else torch.optim.AdamW
    opt = cls(list(params.values()), **options)
    steps = []
    for g in grads:
        for name, p in params.items():
            p.grad = None if g[name] is None else g[name].clone()
        opt.step()
        steps.append({name: encode(p)["data"] for name, p in params.items()})
    state = []
    for p in params.values():
        s = opt.state[p]
        state.append({"step": float(s["step"].item()), "exp_avg": encode(s["exp_avg"]),
                      "exp_avg_sq": encode(s["exp_avg_sq"])})
    return steps, state


def build():
    params0 = initial_parameters()
    # The fixture's initial values are its float32 shortest decimals; PyTorch starts from exactly those.
    params0 = {name: torch.tensor(encode(p)["data"], dtype=torch.float32).reshape(p.shape)
               for name, p in params0.items()}
    grads = gradients(params0)
    configs = []
    for name, kind, overrides in CONFIGS:
        o = dict(DEFAULTS[kind], **overrides)
        options = {"lr": f32(o["lr"]), "beta1": f32(o["betas"][0]), "beta2": f32(o["betas"][1]),
                   "eps": f32(o["eps"]), "weight_decay": f32(o["weight_decay"])}
        torch_options = dict(lr=options["lr"], betas=(options["beta1"], options["beta2"]), eps=options["eps"],
                             weight_decay=options["weight_decay"])
        steps, state = trajectory(kind, torch_options, params0, grads)
        for s in steps:
            assert all(np.isfinite(v) for values in s.values() for v in values), f"non-finite in {name}"
        configs.append({"name": name, "kind": kind, "options": options, "steps": steps, "final_state": state})
    return {
        "generator": "tests/gen_fixtures_adam.py",
        "torch_version": torch.__version__,
        "num_steps": STEPS,
        "parameter_names": list(params0),
        "parameters0": [encode(p) for p in params0.values()],
        # grads[step][parameter]: the flat gradient, or null for none at that step
        "grads": [[None if g[name] is None else encode(g[name])["data"] for name in params0] for g in grads],
        "configs": configs,
    }


def main():
    doc = build()
    os.makedirs(os.path.dirname(ADAM_PATH), exist_ok=True)
    with open(ADAM_PATH, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {ADAM_PATH}: {os.path.getsize(ADAM_PATH)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
