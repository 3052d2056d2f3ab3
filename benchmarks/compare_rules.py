"""Every registered rule on the same data, glimpse budget, network and probe, over several seeds.

    PYTHONPATH=. python benchmarks/compare_rules.py            # mnist5k, 3 seeds, a few minutes on 2 cores
    PYTHONPATH=. python benchmarks/compare_rules.py --big      # more glimpses, channels, probe items

Runs through :func:`saccade_sim.sweep.run_sweep` (one run folder per rule and seed under ``--runs``, reused
when the benchmark is run again; ``--jobs N`` runs N at once). Rows: each rule of ``saccade_sim.registry.RULES`` with its settings below (a rule registered later, e.g.
CLAPP, is picked up with its own defaults unless it has an entry in SETTINGS), plus the competitive
variants of the Hebbian rules. Columns: the ridge probe's held-out accuracy of the trained layer, the
same architecture with its initial random weights, and the raw glimpses; mean ± sd over seeds.
"""
from __future__ import annotations

import argparse
import copy
from typing import Any

from saccade_sim import plugins  # noqa: F401  (registers the built-in rules)
from saccade_sim.registry import RULES
from saccade_sim.sweep import run_sweep

from common import DATA, arguments, machine, parse, table, write_json

#: rule-specific settings (sections of the config); rules not named here run with their defaults
SETTINGS: dict[str, dict[str, Any]] = {
    "activation": {"rule": {"lr": 0.002}},
    "sphere": {"rule": {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.05}},
    "clapp": {"rule": {"optimizer": "adam", "lr": 2e-4}},
    "clapp_s": {"rule": {"optimizer": "adam", "lr": 2e-4}},
}
#: competitive variants of the Hebbian rules (name -> rule table)
VARIANTS: dict[str, dict[str, Any]] = {
    "instar+kwta": {"name": "instar", "competition": "kwta", "k": 1, "threshold_rate": 0.01},
    "oja+kwta": {"name": "oja", "competition": "kwta", "k": 1, "threshold_rate": 0.01},
    "softhebb (oja+soft, anti-Hebbian)": {"name": "oja", "competition": "soft", "temperature": 1.0,
                                          "anti_hebbian": True},
}


def rows() -> dict[str, dict[str, Any]]:
    """Row label -> config overrides, for every registered rule and every competitive variant."""
    out = {name: copy.deepcopy(SETTINGS.get(name, {})) for name in RULES.names()}
    for name in out:
        out[name].setdefault("rule", {})["name"] = name
    out.update({label: {"rule": dict(rule)} for label, rule in VARIANTS.items()})
    return out


def base_config(args: argparse.Namespace) -> dict[str, Any]:
    return {"data": {"source": str(DATA / args.data)},
            "network": {"layers": [{"channels": args.channels, "kernel": 5, "pool": 2}]},
            "run": {"events": args.events},
            "probe": {"train": args.probe_train, "test": args.probe_test, "pool": 1}}


def main() -> None:
    p = arguments(__doc__, "compare_rules")
    p.add_argument("--data", default="mnist5k.npz", help="a file in the shared data folder")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--events", type=int, default=150, help="glimpse events per run (x eye.batch 16 glimpses)")
    p.add_argument("--channels", type=int, default=8)
    p.add_argument("--probe-train", type=int, default=600)
    p.add_argument("--probe-test", type=int, default=400)
    p.add_argument("--big", action="store_true", help="600 events, 32 channels, probe 2000/1000")
    p.add_argument("--only", nargs="*", help="row labels to run (default: all)")
    p.add_argument("--jobs", type=int, default=1, help="runs at once (local processes, --threads torch threads each)")
    p.add_argument("--runs", default="benchmarks/results/compare_rules_runs",
                   help="the sweep folder: one run folder per rule and seed; finished runs are reused")
    args = parse(p)
    if args.big:
        args.events, args.channels, args.probe_train, args.probe_test = 600, 32, 2000, 1000
    variants = {label: extra for label, extra in rows().items() if not args.only or label in args.only}
    sweep = run_sweep(base_config(args), variants=variants, seeds=range(args.seeds), out=args.runs, jobs=args.jobs,
                      threads=args.threads)
    columns = ["rule", "trained layer1", "random weights", "raw glimpses", "trained - random", "s/run"]
    body = []
    for label in variants:
        layer, raw = sweep.row(label, "layer1"), sweep.row(label, "input")
        if not layer["seeds"]:
            body.append({"rule": label, "trained layer1": "error: " + layer["error"][:60]})
            continue
        body.append({"rule": label, "trained layer1": f"{layer['accuracy_mean']:.3f} ± {layer['accuracy_sd']:.3f}",
                     "random weights": f"{layer['random_mean']:.3f} ± {layer['random_sd']:.3f}",
                     "raw glimpses": f"{raw['accuracy_mean']:.3f} ± {raw['accuracy_sd']:.3f}",
                     "trained - random": f"{layer['gain_mean']:+.3f}", "s/run": f"{layer['wall_s_mean']:.0f}"})
    print(f"\ncompare_rules: {args.data}, {args.events} events x 16 glimpses, conv {args.channels}x5x5 + relu + "
          f"maxpool 2, ridge probe on {args.probe_train}/{args.probe_test} held-out stimuli, {args.seeds} seeds; "
          f"{machine()['summary']}")
    print(table(body, columns, style="markdown"))
    write_json(args.json, args, rows=sweep.rows)


if __name__ == "__main__":
    main()
