"""Every registered rule on the same data, glimpse budget, network and probe, over several seeds.

    PYTHONPATH=. python benchmarks/compare_rules.py            # mnist5k, 3 seeds, a few minutes on 2 cores
    PYTHONPATH=. python benchmarks/compare_rules.py --big      # more glimpses, channels, probe items

Rows: each rule of ``saccade_sim.registry.RULES`` with its settings below (a rule registered later, e.g.
CLAPP, is picked up with its own defaults unless it has an entry in SETTINGS), plus the competitive
variants of the Hebbian rules. Columns: the ridge probe's held-out accuracy of the trained layer, the
same architecture with its initial random weights, and the raw glimpses; mean ± sd over seeds.
"""
from __future__ import annotations

import argparse
import copy
import time
from typing import Any

import saccade_sim as ss
from saccade_sim import plugins  # noqa: F401  (registers the built-in rules)
from saccade_sim.registry import RULES

from common import DATA, arguments, machine, mean_sd, parse, summary, table, write_json

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


def base_config(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    return {"seed": seed, "data": {"source": str(DATA / args.data)},
            "network": {"layers": [{"channels": args.channels, "kernel": 5, "pool": 2}]},
            "run": {"events": args.events, "progress": False},
            "probe": {"train": args.probe_train, "test": args.probe_test, "pool": 1}}


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for section, values in extra.items():
        out.setdefault(section, {}).update(values)
    return out


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
    args = parse(p)
    if args.big:
        args.events, args.channels, args.probe_train, args.probe_test = 600, 32, 2000, 1000
    results: dict[str, Any] = {}
    for label, extra in rows().items():
        if args.only and label not in args.only:
            continue
        runs = []
        for seed in range(args.seeds):
            start = time.perf_counter()
            try:
                r = ss.Experiment(merge(base_config(args, seed), extra)).run(progress=False)
            except ss.SaccadeSimError as exc:  # a rule that cannot run this setting: say so, go on
                runs.append({"error": str(exc)})
                break
            runs.append({"trained": r["probe"]["layers"]["layer1"], "random": r["probe"]["baselines"]["random"]["layer1"],
                         "input": r["probe"]["baselines"]["input"], "wall_s": time.perf_counter() - start})
        results[label] = {"config": extra, "runs": runs}
        print(f"{label}: {runs}", flush=True)
    columns = ["rule", "trained layer1", "random weights", "raw glimpses", "trained - random", "s/run"]
    body = []
    for label, res in results.items():
        ok = [r for r in res["runs"] if "error" not in r]
        if not ok:
            body.append({"rule": label, "trained layer1": "error: " + res["runs"][0]["error"][:60]})
            continue
        body.append({"rule": label, "trained layer1": mean_sd([r["trained"] for r in ok]),
                     "random weights": mean_sd([r["random"] for r in ok]),
                     "raw glimpses": mean_sd([r["input"] for r in ok]),
                     "trained - random": f"{summary([r['trained'] - r['random'] for r in ok])['mean']:+.3f}",
                     "s/run": f"{summary([r['wall_s'] for r in ok])['mean']:.0f}"})
    print(f"\ncompare_rules: {args.data}, {args.events} events x 16 glimpses, conv {args.channels}x5x5 + relu + "
          f"maxpool 2, ridge probe on {args.probe_train}/{args.probe_test} held-out stimuli, {args.seeds} seeds; "
          f"{machine()['summary']}")
    print(table(body, columns, style="markdown"))
    write_json(args.json, args, results=results)


if __name__ == "__main__":
    main()
