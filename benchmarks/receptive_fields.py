"""Do Hebbian first layers learn oriented receptive fields on natural-image glimpses?

For each rule setting, simulate a one-layer conv net (32 units, 8x8 kernels) on 16x16 grey glimpses of the
shared natural photographs, then fit a Gabor to every unit's weights and measure its orientation
selectivity (OSI), next to the same layer with its random initial weights. Prints a table and writes JSON.

    PYTHONPATH=. python benchmarks/receptive_fields.py [--events 400] [--out benchmarks/receptive_fields.json]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from common import DATA
from saccade_sim.analysis.report import field_stats
from saccade_sim.experiment import Experiment

SETTINGS = {
    "oja": {"name": "oja"},
    "oja soft T=1": {"name": "oja", "competition": "soft", "temperature": 1.0, "lr": 0.05},
    "oja kwta k=1": {"name": "oja", "competition": "kwta", "k": 1, "threshold_rate": 1.0, "lr": 0.05},
    "instar soft T=1": {"name": "instar", "competition": "soft", "temperature": 1.0, "lr": 0.05},
    "instar kwta k=1": {"name": "instar", "competition": "kwta", "k": 1, "threshold_rate": 1.0, "lr": 0.05},
}


def config(rule: dict, events: int, data: Path) -> dict:
    return {"data": {"source": str(data)}, "glimpse": {"patch": 16, "color": "gray"}, "eye": {"batch": 16},
            "network": {"layers": [{"kind": "conv", "channels": 32, "kernel": 8, "padding": 0, "pool": 2}]},
            "rule": {"lr": 0.01, **rule}, "run": {"events": events, "progress": False},
            "probe": {"enabled": False}}


def measure(rule: dict, events: int, data: Path) -> dict:
    exp = Experiment(config(rule, events, data))
    start = time.perf_counter()
    exp.simulate(progress=False)
    wall = time.perf_counter() - start
    out = {"wall_s": round(wall, 1)}
    for who, layer in (("trained", exp.layers[0]), ("random", exp.initial_layers[0])):
        s = field_stats(layer.weight.detach().double().numpy(), max_units=32)
        out[who] = {"gabor_r2": round(float(np.nanmean(s["r2"])), 3), "osi": round(float(np.nanmean(s["osi"])), 3),
                    "oriented_fraction": round(float(((s["osi"] > 0.3) & (s["r2"] > 0.7)).mean()), 3)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000, help="glimpse events per run (x 16 eyes)")
    parser.add_argument("--data", type=Path, default=DATA / "natural")
    parser.add_argument("--only", nargs="*", default=list(SETTINGS), help="settings to run")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/receptive_fields.json"))
    args = parser.parse_args()
    rows = {name: measure(SETTINGS[name], args.events, args.data) for name in args.only}
    header = f"{'rule setting':<20} {'Gabor R2':>9} {'OSI':>6} {'oriented':>9}   {'random: R2':>10} {'OSI':>6} {'oriented':>9}"
    print(header)
    print("-" * len(header))
    for name, r in rows.items():
        t, q = r["trained"], r["random"]
        print(f"{name:<20} {t['gabor_r2']:>9.3f} {t['osi']:>6.3f} {t['oriented_fraction']:>9.3f}   "
              f"{q['gabor_r2']:>10.3f} {q['osi']:>6.3f} {q['oriented_fraction']:>9.3f}")
    print(f"(32 units, 8x8 kernels, {args.events} events x 16 eyes of 16x16 grey natural glimpses; "
          "oriented = OSI > 0.3 and Gabor R2 > 0.7)")
    args.out.write_text(json.dumps({"events": args.events, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
