"""Miconi's (2021) multi-layer Hebbian net: probe accuracy layer by layer, without and with the two
interventions (dense forward output while plasticity uses only the k-WTA winners; ~99% fixed random
pruning of the connections between layers).

    PYTHONPATH=. python benchmarks/miconi_layers.py           # cifar10_5k, ZCA, a few minutes on 2 cores
    PYTHONPATH=. python benchmarks/miconi_layers.py --big     # more images, bigger probe, 2 seeds

The paper's claim: without the interventions decoding falls over layers; with them it rises (64.6%
CIFAR-10 from layer 3 with all data). Each run: instar with unit-norm weights, k-WTA plasticity with
adaptive thresholds, ZCA-whitened input, whole 32x32 images as glimpses, all layers learning at once.
"""
from __future__ import annotations

import argparse
import time
from typing import Any

import saccade_sim as ss

from common import DATA, arguments, machine, mean_sd, parse, table, write_json

VARIANTS = {"none": "miconi", "dense output": "miconi_dense", "pruning": "miconi_pruned",
            "both": "miconi_both"}


def config(args: argparse.Namespace, preset: str, seed: int) -> dict[str, Any]:
    return {"seed": seed,
            "data": {"source": str(DATA / args.data), "normalize": "zca", "zca_size": 7},
            "glimpse": {"patch": 32},
            "network": {"preset": preset},
            "rule": {"name": "instar", "lr": args.lr, "competition": "kwta", "k": 5,
                     "threshold_rate": args.threshold_rate},
            "run": {"events": args.events, "progress": False},
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
    args = parse(p)
    if args.big:
        args.events, args.probe_train, args.probe_test, args.seeds = 310, 4000, 1000, 3
    results: dict[str, Any] = {}
    for label, preset in VARIANTS.items():
        runs = []
        for seed in range(args.seeds):
            start = time.perf_counter()
            r = ss.Experiment(config(args, preset, seed)).run(progress=False)
            runs.append({"trained": r["probe"]["layers"], "random": r["probe"]["baselines"]["random"],
                         "input": r["probe"]["baselines"]["input"], "wall_s": time.perf_counter() - start})
        results[label] = {"preset": preset, "runs": runs}
        print(label, runs, flush=True)
    layers = list(results["none"]["runs"][0]["trained"])
    columns = ["interventions"] + [f"{n} trained (random)" for n in layers] + ["trend L1->L3"]
    body = []
    for label, res in results.items():
        row = {"interventions": label}
        for n in layers:
            row[f"{n} trained (random)"] = (f"{mean_sd([r['trained'][n] for r in res['runs']])} "
                                            f"({mean_sd([r['random'][n] for r in res['runs']])})")
        trend = sum(r["trained"][layers[-1]] - r["trained"][layers[0]] for r in res["runs"]) / len(res["runs"])
        body.append({**row, "trend L1->L3": f"{trend:+.3f}"})
    raw = [r["input"] for res in results.values() for r in res["runs"]]
    print(f"\nmiconi_layers: {args.data}, ZCA, {args.events} events x 16 images, instar + k-WTA (k=5), "
          f"ridge probe {args.probe_train}/{args.probe_test}, {args.seeds} seed(s); raw-pixel probe {mean_sd(raw)}; "
          f"{machine()['summary']}")
    print(table(body, columns, style="markdown"))
    write_json(args.json, args, results=results)


if __name__ == "__main__":
    main()
