"""Every registered rule on the same data, glimpse budget, network and probe, over several seeds, ranked.

    PYTHONPATH=. python benchmarks/compare_rules.py                      # mnist5k, 5 seeds, ~40 min on 2 cores
    PYTHONPATH=. python benchmarks/compare_rules.py --only oja softhebb --seeds 3 --jobs 2

Runs through :func:`saccade_sim.sweep.run_sweep` (one run folder per rule and seed under ``--out``, read back
when the benchmark is run again, so rules run in several sittings (``--only``) join the table of the command
that names them all; ``--jobs N`` runs N at once).

Rows: each rule of ``saccade_sim.registry.RULES`` with its settings below (a rule registered later is picked
up with its own defaults unless it has an entry in SETTINGS), plus the competitive variants of the Hebbian
rules, sorted by their gain over random weights. Columns: the ridge probe's held-out accuracy of the trained
layer, the same architecture with its initial random weights and the raw glimpses (mean ± sd over seeds);
the paired gain trained - random with its standard error (sd / sqrt(seeds)) and how many seeds are above;
and the paired difference to the next rule down with its standard error (the same seed gives every rule the
same initial weights and glimpse stream, so rules are compared seed by seed). Two rules are ranked apart when
that difference exceeds about twice its standard error.
"""
from __future__ import annotations

import argparse
import copy
from typing import Any

from saccade_sim import plugins  # noqa: F401  (registers the built-in rules)
from saccade_sim.registry import RULES
from saccade_sim.sweep import run_sweep

from common import DATA, arguments, machine, mean_sd, mean_se, parse, summary, sweep_arguments, table, write_json

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
    "oja+soft (anti-Hebbian)": {"name": "oja", "competition": "soft", "temperature": 1.0, "anti_hebbian": True},
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
            "run": {"events": args.events, "progress": False},
            "probe": {"train": args.probe_train, "test": args.probe_test, "pool": 1, "solver": "auto"}}


def run_rules(args: argparse.Namespace, labels: list[str] | None = None) -> dict[str, Any]:
    """{label: {"config", "runs": [{"seed", "trained", "random", "input", "wall_s"} or {"error"}]}}, each run a
    folder of the sweep under ``args.out``."""
    variants = {label: extra for label, extra in rows().items() if not labels or label in labels}
    sweep = run_sweep(base_config(args), variants=variants, seeds=range(args.seeds), out=args.out, jobs=args.jobs,
                      threads=args.threads)
    results: dict[str, Any] = {label: {"config": extra, "runs": []} for label, extra in variants.items()}
    for run in sweep.runs:
        if not run.results:
            results[run.label]["runs"].append({"error": run.error or run.status})
            continue
        probe = run.results["probe"]
        results[run.label]["runs"].append({"seed": run.seed, "trained": probe["layers"]["layer1"],
                                           "random": probe["baselines"]["random"]["layer1"],
                                           "input": probe["baselines"]["input"], "wall_s": run.results["wall_s"]})
    return results


def ranked_table(results: dict[str, Any]) -> str:
    """The rules sorted by mean gain over random weights, each with its paired gap to the next one down."""
    ok = {label: [r for r in res["runs"] if "error" not in r] for label, res in results.items()}
    gains = {label: [r["trained"] - r["random"] for r in runs] for label, runs in ok.items() if runs}
    order = sorted(gains, key=lambda label: -summary(gains[label])["mean"])
    columns = ["rule", "trained layer1", "random weights", "raw glimpses", "gain (± SE)", "above",
               "gap to next (± SE)", "s/run"]
    body = []
    for i, label in enumerate(order):
        runs = ok[label]
        row = {"rule": label, "trained layer1": mean_sd([r["trained"] for r in runs]),
               "random weights": mean_sd([r["random"] for r in runs]),
               "raw glimpses": mean_sd([r["input"] for r in runs]), "gain (± SE)": mean_se(gains[label]),
               "above": f"{sum(g > 0 for g in gains[label])}/{len(runs)}",
               "s/run": f"{summary([r['wall_s'] for r in runs])['mean']:.0f}"}
        if i + 1 < len(order):
            nxt = {r["seed"]: r["trained"] for r in ok[order[i + 1]]}
            diff = [r["trained"] - nxt[r["seed"]] for r in runs if r["seed"] in nxt]
            row["gap to next (± SE)"] = mean_se(diff) if len(diff) > 1 else ""
        body.append(row)
    body += [{"rule": label, "trained layer1": "error: " + res["runs"][0]["error"][:60]}
             for label, res in results.items() if not ok[label]]
    return table(body, columns, style="markdown")


def main() -> None:
    p = arguments(__doc__, "compare_rules")
    p.add_argument("--data", default="mnist5k.npz", help="a file in the shared data folder")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--events", type=int, default=1000, help="glimpse events per run (x eye.batch 16 glimpses)")
    p.add_argument("--channels", type=int, default=32)
    p.add_argument("--probe-train", type=int, default=2000)
    p.add_argument("--probe-test", type=int, default=1000)
    p.add_argument("--only", nargs="*", help="row labels to run (default: all)")
    sweep_arguments(p, "compare_rules")
    args = parse(p)
    results = run_rules(args, args.only)
    print(f"\ncompare_rules: {args.data}, {args.events} events x 16 glimpses, conv {args.channels}x5x5 + relu + "
          f"maxpool 2, ridge probe on {args.probe_train}/{args.probe_test} held-out stimuli, {args.seeds} seeds; "
          f"{machine()['summary']}")
    print(ranked_table(results))
    write_json(args.json, args, results=results)


if __name__ == "__main__":
    main()
