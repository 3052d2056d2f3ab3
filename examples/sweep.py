"""A sweep from Python: two rules x two learning rates x three seeds, each run in its own folder, then the
cross-run table (mean ± sd over seeds, paired gain over the random-weights twin) and the best setting.

    python examples/sweep.py [--data PATH.npz] [--events N] [--seeds 3] [--jobs 1] [--out DIR]

Run it again and the finished runs are skipped: only what is missing runs.
"""
from __future__ import annotations

import argparse

from saccade_sim.sweep import run_sweep


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/mnist5k.npz")
    ap.add_argument("--events", type=int, default=200)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--out", default="runs/sweep-example")
    args = ap.parse_args()
    base = {"data": {"source": args.data}, "network": {"preset": "tiny"}, "run": {"events": args.events},
            "probe": {"train": 400, "test": 200}, "rule": {"competition": "kwta", "k": 1, "threshold_rate": 0.01}}
    table = run_sweep(base, {"rule.name": ["oja", "instar"], "rule.lr": [0.01, 0.05]}, seeds=range(args.seeds),
                      out=args.out, jobs=args.jobs, progress=False)
    print(table.markdown())
    best = max((r for r in table.rows if r["representation"] == "layer1"), key=lambda r: r["gain_mean"])
    print(f"largest gain over random weights: {best['combination']}: {best['gain_mean']:+.3f} ± {best['gain_sd']:.3f} "
          f"({best['gain_above']}/{best['seeds']} seeds above)")


if __name__ == "__main__":
    main()
