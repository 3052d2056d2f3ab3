"""What a local step spends its time on: torch.profiler over local-rule steps and backprop steps of one encoder.

    PYTHONPATH=. python benchmarks/profile_step.py [--preset vgg6] [--rule clapp] [--batch 32] [--steps 6] [--top 12]

The steps are :mod:`local_vs_backprop`'s (the same experiment, glimpses and backprop encoder), after a warm-up
of ``--steps`` steps of each (CLAPP's context window fills in the first events). Prints, for each side, the
wall time and the ops with the most self CPU time, with their share of the side's profiled self time.
"""
from __future__ import annotations

import argparse

import torch
from torch.profiler import ProfilerActivity, profile

from common import DATA, arguments, parse, table, timed, write_json
from local_vs_backprop import Backprop, local_step, make


def top_ops(prof, n: int) -> tuple[list[dict], float]:
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    events.sort(key=lambda e: -e.self_cpu_time_total)
    return [{"op": e.key, "calls": e.count, "self ms": e.self_cpu_time_total / 1e3,
             "share": e.self_cpu_time_total / total} for e in events[:n]], total / 1e3


def main() -> None:
    parser = arguments(__doc__, "profile_step")
    parser.add_argument("--data", default=DATA / "mnist5k.npz")
    parser.add_argument("--preset", default="vgg6")
    parser.add_argument("--rule", default="clapp")
    parser.add_argument("--optimizer", default="sgd")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    args = parse(parser)
    exp = make(args, args.preset)
    bp = Backprop(exp, args.optimizer, exp.config.rule.lr)
    glimpses = [exp.eye.next_glimpse(float(t)) for t in range(args.steps)]
    sides = {"local": lambda g: local_step(exp, g), "backprop": bp.step}
    out = {}
    for name, step in sides.items():
        for g in glimpses:  # warm-up
            step(g)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            wall = timed(lambda: [step(g) for g in glimpses])
        rows, total = top_ops(prof, args.top)
        out[name] = {"wall_ms_per_step": 1e3 * wall / args.steps, "self_ms": total, "top": rows}
        print(f"\n{name} step: {1e3 * wall / args.steps:.1f} ms per step under the profiler "
              f"({args.preset}, {args.rule}, batch {args.batch}, {args.steps} steps, {args.threads} thread(s))")
        print(table(rows, ["op", "calls", "self ms", "share"], style="left"))
    write_json(args.json, args, **out)


if __name__ == "__main__":
    main()
