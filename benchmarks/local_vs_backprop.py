"""Local rule vs backprop: one local-rule training step of a network vs one end-to-end backprop step of the
same encoder on the same batch.

    PYTHONPATH=. python benchmarks/local_vs_backprop.py [--rule clapp] [--presets small vgg6] [--batch 32]
    PYTHONPATH=. python benchmarks/local_vs_backprop.py --rule clapp --set rule.timing=immediate

Local step: every layer agent's ``step`` in turn (forward, the rule's update into ``.grad``, optimiser
step, transmit; inputs detached, no SimPy). Backprop step: the same layers (a copy, same weights) run
forward with autograd, a linear read-out of the top layer's output is scored by cross-entropy on the
glimpses' labels, ``backward()`` goes through every layer (input gradients included) and an optimiser of
the same kind steps all parameters. Both consume the same pre-cut glimpses, alternately, several rounds;
the ratio is taken per round. ``--rule`` picks any registered rule, ``--set`` overrides config keys.

The two sides must share their forward pass: before timing, the agents' steps with learning off and the
backprop encoder map the same glimpses to identical outputs, and after timing both sides have changed their
weights; otherwise the script exits with status 1 and reports nothing.
"""
from __future__ import annotations

import argparse
import copy
from typing import Callable

import torch
import torch.nn.functional as F

from common import DATA, arguments, interleaved, max_difference, parse, require, summary, table, timed, write_json
from saccade_sim.config import apply_override
from saccade_sim.experiment import Experiment


def make(args: argparse.Namespace, preset: str) -> Experiment:
    raw = {"data": {"source": str(args.data), "train_limit": 2000}, "eye": {"batch": args.batch},
           "network": {"preset": preset}, "rule": {"name": args.rule, "optimizer": args.optimizer},
           "run": {"progress": False}, "probe": {"enabled": False}}
    for assignment in args.set:
        apply_override(raw, assignment)
    return Experiment(raw)


class Backprop:
    """End-to-end backprop through the experiment's encoder (a copy) with a linear cross-entropy head."""

    def __init__(self, exp: Experiment, optimizer: str, lr: float) -> None:
        self.layers = copy.deepcopy(exp.layers)
        top = exp.layers[-1].out_shape
        self.head = torch.nn.Linear(int(torch.tensor(top).prod()), len(exp.split.classes))
        params = [p for layer in self.layers for p in layer.parameters()] + list(self.head.parameters())
        self.optimizer = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[optimizer](params, lr=lr)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's output for glimpses ``x``: each layer's transmitted ``pool(rho(W x))``, with autograd."""
        for layer in self.layers:
            x = layer.transmit(layer(x)[1])
        return x

    def step(self, g) -> None:
        x = self.encode(g.data)
        loss = F.cross_entropy(self.head(x.flatten(1)), g.label)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()


def local_step(exp: Experiment, g) -> None:
    for agent in exp.agents:
        g = agent.step(g)


def local_forward(exp: Experiment, g) -> torch.Tensor:
    """What the agents transmit for glimpse ``g`` with learning off (their step's forward pass only)."""
    for agent in exp.agents:
        agent.learning = False
        try:
            g = agent.step(g)
        finally:
            agent.learning = True
    return g.data


def check_forward(exp: Experiment, bp: Backprop, glimpses: list) -> None:
    """Exit unless the agents' forward pass and the backprop encoder give identical outputs on ``glimpses``."""
    with torch.no_grad():
        diff = max(float((local_forward(exp, g) - bp.encode(g.data)).abs().max()) for g in glimpses)
    require(diff == 0, f"the local and backprop forward passes of {exp.config.network.preset} differ by {diff:.3g}")


def measure(args: argparse.Namespace, preset: str, backprop: Callable[..., Backprop] = Backprop) -> dict:
    exp = make(args, preset)
    bp = backprop(exp, args.optimizer, exp.config.rule.lr)
    glimpses = [exp.eye.next_glimpse(float(t)) for t in range(args.steps)]
    check_forward(exp, bp, glimpses)
    before_local, before_bp = copy.deepcopy(exp.layers), copy.deepcopy(bp.layers)

    def run(step) -> float:
        return timed(lambda: [step(g) for g in glimpses])

    run(lambda g: local_step(exp, g)), run(bp.step)  # warm-up
    stats = interleaved({"local": lambda: run(lambda g: local_step(exp, g)), "backprop": lambda: run(bp.step)},
                        args.repeats)
    for side, now, before in (("local", exp.layers, before_local), ("backprop", bp.layers, before_bp)):
        require(max_difference(now, before) > 0, f"the {side} step of {preset} changed no weight")
    r = summary([a / b for a, b in zip(stats["local"]["values"], stats["backprop"]["values"])])
    n = args.steps * args.batch
    return {"preset": preset, "batch": args.batch, "rule": args.rule,
            "local glimpses/s": n / stats["local"]["median"], "backprop glimpses/s": n / stats["backprop"]["median"],
            "local/backprop": r["median"], "ratio min": r["min"], "ratio max": r["max"]}


def main() -> None:
    parser = arguments(__doc__, "local_vs_backprop")
    parser.add_argument("--data", default=DATA / "mnist5k.npz")
    parser.add_argument("--rule", default="oja")
    parser.add_argument("--optimizer", default="sgd")
    parser.add_argument("--presets", nargs="+", default=["small", "vgg6"])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10, help="steps per timed run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    args = parse(parser)
    rows = [measure(args, p) for p in args.presets]
    print(f"{args.threads} thread(s), optimiser {args.optimizer}, overrides {args.set or 'none'}, {args.steps} "
          f"steps per run, median of {args.repeats} interleaved rounds (ratio: per round); identical forward "
          "passes and both sides learning (checked)")
    print(table(rows, list(rows[0])))
    write_json(args.json, args, rows=rows)


if __name__ == "__main__":
    main()
