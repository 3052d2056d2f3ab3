"""Miconi's (2021) multi-layer Hebbian net: probe accuracy layer by layer, without and with the two
interventions (dense forward output while plasticity uses only the k-WTA winners; ~99% fixed random
pruning of the connections between layers).

    PYTHONPATH=. python benchmarks/miconi_layers.py           # cifar10_5k, ZCA, a few minutes on 2 cores
    PYTHONPATH=. python benchmarks/miconi_layers.py --big     # more events, bigger probe, 3 seeds

The paper's claim: without the interventions decoding falls over layers; with them it rises (64.6%
CIFAR-10 from layer 3 with all data). Each run: instar with unit-norm weights, k-WTA plasticity with
adaptive thresholds, ZCA-whitened input, whole 32x32 images as glimpses, all layers learning at once. Runs
through :func:`saccade_sim.sweep.run_sweep` (one run folder per variant and seed under ``--runs``, reused
when the benchmark is run again; ``--jobs N`` runs N at once).
"""
from __future__ import annotations

import argparse
from typing import Any

from saccade_sim.sweep import run_sweep

from common import DATA, arguments, machine, mean_sd, parse, table, write_json

VARIANTS = {"none": "miconi", "dense output": "miconi_dense", "pruning": "miconi_pruned",
            "both": "miconi_both"}


def config(args: argparse.Namespace) -> dict[str, Any]:
    return {"data": {"source": str(DATA / args.data), "normalize": "zca", "zca_size": 7},
            "glimpse": {"patch": 32},
            "rule": {"name": "instar", "lr": args.lr, "competition": "kwta", "k": 5,
                     "threshold_rate": args.threshold_rate},
            "run": {"events": args.events},
            "probe": {"train": args.probe_train, "test": args.probe_test, "pool": 2}}


def main() -> None:
    p = arguments(__doc__, "miconi_layers")
    p.add_argument("--data", default="cifar10_5k.npz")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--events", type=int, default=60, help="glimpse events (x 16 images)")
    p.add_argument("--lr", type=float, default=0.2)
    p.add_argument("--threshold-rate", type=float, default=0.05)
    p.add_argument("--probe-train", type=int, default=2000)
    p.add_argument("--probe-test", type=int, default=1000)
    p.add_argument("--big", action="store_true", help="310 events (~1 epoch), probe 4000/1000, 3 seeds")
    p.add_argument("--jobs", type=int, default=1, help="runs at once (local processes, --threads each)")
    p.add_argument("--runs", default="benchmarks/results/miconi_layers_runs",
                   help="the sweep folder: one run folder per variant and seed; finished runs are reused")
    args = parse(p)
    if args.big:
        args.events, args.probe_train, args.probe_test, args.seeds = 310, 4000, 1000, 3
    sweep = run_sweep(config(args), variants={label: {"network": {"preset": preset}}
                                              for label, preset in VARIANTS.items()},
                      seeds=range(args.seeds), out=args.runs, jobs=args.jobs, threads=args.threads)
    runs = {label: [r.results["probe"] for r in sweep.runs if r.label == label and r.results] for label in VARIANTS}
    layers = list(runs["none"][0]["layers"])
    columns = ["interventions"] + [f"{n} trained (random)" for n in layers] + ["trend L1->L3"]
    body = []
    for label, probes in runs.items():
        row = {"interventions": label}
        for n in layers:
            row[f"{n} trained (random)"] = (f"{mean_sd([p['layers'][n] for p in probes])} "
                                            f"({mean_sd([p['baselines']['random'][n] for p in probes])})")
        trend = sum(p["layers"][layers[-1]] - p["layers"][layers[0]] for p in probes) / len(probes)
        body.append({**row, "trend L1->L3": f"{trend:+.3f}"})
    raw = [p["baselines"]["input"] for probes in runs.values() for p in probes]
    print(f"\nmiconi_layers: {args.data}, ZCA, {args.events} events x 16 images, instar + k-WTA (k=5), "
          f"ridge probe {args.probe_train}/{args.probe_test}, {args.seeds} seed(s); raw-pixel probe {mean_sd(raw)}; "
          f"{machine()['summary']}")
    print(table(body, columns, style="markdown"))
    write_json(args.json, args, rows=sweep.rows)


if __name__ == "__main__":
    main()
