"""Scaling efficiency of torchrun ranks on this machine, and the cost of the synchronisation interval K.

    PYTHONPATH=. python benchmarks/distributed_scaling.py [--events 150] [--repeats 3] [--json PATH]

Every case is one ``torchrun --standalone --nproc_per_node=N -m saccade_sim run`` with one thread per rank
(OMP_NUM_THREADS=1), the same global batch, and no probe; its simulation throughput is rank 0's
``glimpses_per_s`` (all ranks' glimpses over the simulation's wall time, start-up excluded). Cases are
interleaved round after round so they share the machine's load. Efficiency = glimpses/s with N ranks /
(N x glimpses/s with 1 rank). With K = 1 the ranks compute what one process computes (the changes averaged
every event): every 2-rank K = 1 run must end with the 1-rank run's weights (up to float reduction order,
rtol 1e-4), otherwise the script exits with status 1. K > 1 (periodic weight averaging) learns differently
by design and is not compared.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from common import DATA, arguments, interleaved, parse, require, table, write_json

ROOT = Path(__file__).resolve().parents[1]


def run_case(ranks: int, sync_every: int, args: argparse.Namespace) -> float:
    """One launch: its throughput; its final layer weights are kept in ``WEIGHTS[(ranks, sync_every)]``."""
    with tempfile.TemporaryDirectory() as tmp:
        sets = {"data.source": str(args.data), "data.train_limit": 1000, "eye.batch": args.batch,
                "eye.shards": 2, "network.preset": args.preset, "rule.name": "oja", "run.events": args.events,
                "probe.enabled": "false", "distributed.sync_every": sync_every}
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}",
               "-m", "saccade_sim", "run", "--quiet", "--out", tmp]
        for k, v in sets.items():
            cmd += ["--set", f"{k}={v}"]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
        if proc.returncode:
            sys.exit(proc.stderr[-3000:])
        state = torch.load(Path(tmp) / "checkpoint.pt", weights_only=True)
        WEIGHTS[(ranks, sync_every)] = [a["layer"]["op.weight"] for a in state["agents"]]
        return json.loads((Path(tmp) / "results.json").read_text())["glimpses_per_s"]


WEIGHTS: dict[tuple[int, int], list[torch.Tensor]] = {}


def same_as_one_rank(ranks: int) -> None:
    """Exit unless the last ``ranks``-rank K = 1 run ended with the last 1-rank run's weights."""
    for i, (a, b) in enumerate(zip(WEIGHTS[(1, 1)], WEIGHTS[(ranks, 1)], strict=True)):
        require(torch.allclose(a, b, rtol=1e-4, atol=1e-5),
                f"layer {i + 1}: {ranks} ranks at K = 1 end {float((a - b).abs().max()):.3g} away from 1 rank")


def main() -> None:
    parser = arguments(__doc__, "distributed_scaling", threads=False)
    parser.add_argument("--data", default=DATA / "mnist5k.npz")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--batch", type=int, default=32, help="global eye.batch")
    parser.add_argument("--events", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 4, 16])
    args = parse(parser)

    def two_ranks(k: int) -> float:
        rate = run_case(2, k, args)
        if k == 1:
            same_as_one_rank(2)
        return rate

    cases = {(1, 1): lambda: run_case(1, 1, args)}
    for k in args.ks:
        cases[(2, k)] = (lambda k=k: two_ranks(k))
    stats = interleaved({f"{r}x{k}": fn for (r, k), fn in cases.items()}, args.repeats)
    base = stats["1x1"]["median"]
    rows = []
    for (ranks, k) in cases:
        s = stats[f"{ranks}x{k}"]
        rows.append({"ranks": ranks, "K": k, "glimpses/s": s["median"], "spread": s["rel_spread"],
                     "min": s["min"], "max": s["max"], "efficiency": s["median"] / (ranks * base)})
    print(f"global batch {args.batch}, preset {args.preset}, oja, {args.events} events, one thread per rank, "
          f"median of {args.repeats} interleaved runs; 2 ranks at K = 1 end with 1 rank's weights (checked)")
    print(table(rows, ["ranks", "K", "glimpses/s", "spread", "min", "max", "efficiency"]))
    write_json(args.json, args, rows=rows)


if __name__ == "__main__":
    main()
