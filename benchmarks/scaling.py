"""Scaling: glimpses/s and peak memory against batch size, number of layers, width and run length.

    PYTHONPATH=. python benchmarks/scaling.py [--repeats 3] [--threads 1]

Each point runs in a fresh process (so its peak resident memory, ``ru_maxrss``, is its own) through
``Experiment.simulate`` with default recording (history every ``run.check_every`` events). Points are
interleaved round after round. Run length: the same process simulates N events, notes its peak memory,
simulates 9N more and notes it again; the growth must stay under 5%.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from common import DATA, arguments, interleaved, parse, summary, table, write_json

ROOT = Path(__file__).resolve().parents[1]


def conv(channels: int) -> dict:
    return {"kind": "conv", "channels": channels, "kernel": 3, "pool": 2}


def points() -> dict[str, dict]:
    """name -> config overrides of one point."""
    out = {}
    for b in (1, 8, 32, 128):
        out[f"batch {b}"] = {"eye": {"batch": b}, "network": {"preset": "small"}}
    for n in (1, 2, 3, 4):
        out[f"layers {n}"] = {"eye": {"batch": 32}, "network": {"layers": [conv(32)] * n}}
    for w in (16, 64, 128):
        out[f"width {w}"] = {"eye": {"batch": 32}, "network": {"layers": [conv(w), conv(2 * w)]}}
    return out


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(spec: dict) -> None:
    """Run one point in this process and print its measurements as JSON."""
    import torch

    from saccade_sim.experiment import Experiment

    torch.set_num_threads(spec["threads"])
    cfg = {"data": {"source": spec["data"], "train_limit": 2000}, "run": {"progress": False},
           "probe": {"enabled": False}, "rule": {"name": spec["rule"]}, **spec["config"]}
    exp = Experiment(cfg)
    exp.simulate(3)
    batch = exp.eye.batch
    events = max(20, spec["glimpses"] // batch)
    start = time.perf_counter()
    exp.simulate(events)
    result = {"glimpses/s": events * batch / (time.perf_counter() - start), "peak MB": peak_mb()}
    if spec["long"]:
        exp.simulate(9 * events)
        result["peak MB after 10x"] = peak_mb()
        result["events"] = events
    print(json.dumps(result))


def run_point(config: dict, args: argparse.Namespace, long: bool = False) -> dict:
    spec = {"config": config, "threads": args.threads, "data": str(args.data), "glimpses": args.glimpses,
            "rule": args.rule, "long": long}
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + str(ROOT / "benchmarks")}
    proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True, text=True,
                          env=env, cwd=ROOT)
    if proc.returncode:
        sys.exit(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = arguments(__doc__, "scaling")
    parser.add_argument("--data", default=DATA / "mnist5k.npz")
    parser.add_argument("--glimpses", type=int, default=4096, help="glimpses per timed run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rule", default="oja", help="the rule every point runs (the README table: oja)")
    parser.add_argument("--long-events", type=int, default=200, help="N of the run-length check (then 10 N)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parse(parser)
    if args.worker:
        return worker(json.loads(args.worker))

    grid = points()
    seen: dict[str, list[dict]] = {name: [] for name in grid}
    interleaved({name: (lambda name=name: seen[name].append(run_point(grid[name], args)) or 0.0) for name in grid},
                args.repeats)
    rows = []
    for name, results in seen.items():
        gps = summary([r["glimpses/s"] for r in results])
        rows.append({"point": name, "glimpses/s": gps["median"], "spread": gps["rel_spread"],
                     "peak MB": summary([r["peak MB"] for r in results])["median"]})
    long_cfg = {"eye": {"batch": 16}, "network": {"preset": "small"}}
    long = run_point(long_cfg, argparse.Namespace(**{**vars(args), "glimpses": args.long_events * 16}), long=True)
    growth = long["peak MB after 10x"] / long["peak MB"] - 1
    print(f"{args.threads} thread(s), {args.rule}, mnist 16x16 glimpses, {args.glimpses} glimpses per point, "
          f"median of {args.repeats} interleaved rounds, one process per point")
    print(table(rows, ["point", "glimpses/s", "spread", "peak MB"]))
    print(f"run length (batch 16, small, default recording): peak {long['peak MB']:.1f} MB after "
          f"{long['events']} events, {long['peak MB after 10x']:.1f} MB after {10 * long['events']} events: "
          f"growth {100 * growth:+.2f}% (target < 5%)")
    write_json(args.json, args, rows=rows, run_length={**long, "growth": growth})


if __name__ == "__main__":
    main()
