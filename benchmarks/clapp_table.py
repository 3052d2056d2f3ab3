"""Per-layer linear-probe table of CLAPP and CLAPP-s against the same architecture with random weights
and the raw-input baseline, on real image data, from one command:

    PYTHONPATH=. python benchmarks/clapp_table.py --seeds 0-4 --jobs 2     # the results table (embedded photos)
    PYTHONPATH=. python benchmarks/clapp_table.py --data mnist5k.npz --seeds 0-2 --set rule.lr=0.02

Runs through :func:`saccade_sim.sweep.run_sweep`: one run folder per rule and seed under ``--runs`` (an
ordinary ``saccade-sim run`` folder), finished runs reused when the command is run again, ``--jobs N`` runs at
once. Invocations with different ``--rules`` into the same ``--runs`` folder can go side by side; one more
with all the rules then only prints the joint table. Prints one table (mean +- sd over seeds, and each trained
layer's paired gain over the same seed's random weights) and writes the sweep's rows to JSON.
"""
from __future__ import annotations

import argparse
from typing import Any

from common import DATA, arguments, machine, parse, table, write_json

from saccade_sim.sweep import SweepTable, parse_seeds, run_sweep

#: The setting of the results table, spelled out (these are also saccade-sim's defaults; the rule's optimiser
#: and learning rate are its own defaults, Adam 5e-4 for CLAPP and CLAPP-s).
BASE = {
    "eye": {"batch": 16, "jump_prob": 0.3},
    "network": {"preset": "small"},
}


def source(name: str) -> str:
    """``natural`` (the embedded default) or a file name in ../shared/data."""
    return name if name == "natural" else str(DATA / name)


def base_config(args: argparse.Namespace) -> dict[str, Any]:
    return {**BASE, "data": {"source": source(args.data)}, "run": {"events": args.events},
            "probe": {"train": args.probe[0], "test": args.probe[1]}}


def mean_sd(mean: float, sd: float, n: int, sign: str = "") -> str:
    """'mean +- sd' (the mean alone for one seed); ``sign = "+"`` prints the mean's sign."""
    return f"{mean:{sign}.3f}" if n == 1 else f"{mean:{sign}.3f} +- {sd:.3f}"


def probe_table(sweep: SweepTable, rules: list[str]) -> str:
    """Rows: input, then each layer, each layer's paired gain, the wall time; columns: random weights (the
    first rule's random twins: the same seeds' initial weights), then each rule's trained accuracy."""
    first = sweep.row(rules[0], "input")
    n = first["seeds"]
    layers = [r["representation"] for r in sweep.rows
              if r["combination"] == rules[0] and r["representation"] not in ("", "input")]
    rows = [{"representation": "input (raw glimpses)",
             "random weights": mean_sd(first["accuracy_mean"], first["accuracy_sd"], n)}]
    for name in layers:
        ref = sweep.row(rules[0], name)
        rows.append({"representation": name, "random weights": mean_sd(ref["random_mean"], ref["random_sd"], n),
                     **{rule: mean_sd(sweep.row(rule, name)["accuracy_mean"], sweep.row(rule, name)["accuracy_sd"], n)
                        for rule in rules}})
    for name in layers:
        gains = {rule: sweep.row(rule, name) for rule in rules}
        rows.append({"representation": f"{name} - random (paired)",
                     **{rule: f"{mean_sd(g['gain_mean'], g['gain_sd'], n, '+')} ({g['gain_above']}/{n} above)"
                        for rule, g in gains.items()}})
    rows.append({"representation": "train wall s / run",
                 **{rule: f"{sweep.row(rule, 'input')['wall_s_mean']:.0f}" for rule in rules}})
    return (table(rows, ["representation", "random weights", *rules], style="left")
            + f"\n(ridge-probe test accuracy; chance {first['chance']:.3f}; {n} seed(s))")


def main() -> None:
    parser = arguments(__doc__, "clapp_table")
    parser.add_argument("--data", default="natural", help="natural, or a file in ../shared/data")
    parser.add_argument("--rules", nargs="+", default=["clapp", "clapp_s"])
    parser.add_argument("--seeds", default="0", help="a range 0-4, a list 0,3,7 or one seed")
    parser.add_argument("--events", type=int, default=40000, help="glimpse events per run (x eye.batch glimpses)")
    parser.add_argument("--probe", nargs=2, type=int, default=[2000, 1000], metavar=("TRAIN", "TEST"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (local processes, --threads each)")
    parser.add_argument("--runs", default="benchmarks/results/clapp_table_runs",
                        help="the sweep folder: one run folder per rule and seed; finished runs are reused")
    parser.set_defaults(json="benchmarks/clapp_table.json")
    args = parse(parser)
    sweep = run_sweep(base_config(args), variants={rule: {"rule": {"name": rule}} for rule in args.rules},
                      seeds=parse_seeds(args.seeds), out=args.runs, overrides=args.set, jobs=args.jobs,
                      threads=args.threads)
    failed = [r for r in sweep.runs if r.status not in ("done", "skipped")]
    if failed:
        raise SystemExit(f"clapp_table: {len(failed)} run(s) did not finish: "
                         + "; ".join(f"{r.label} seed {r.seed}: {r.status} {r.error}" for r in failed))
    print(f"clapp_table: {args.data}, {args.events} events x {BASE['eye']['batch']} eyes, ridge probe "
          f"{args.probe[0]}/{args.probe[1]}, overrides {args.set or 'none'}; runs in {args.runs}; "
          f"{machine()['summary']}")
    print(probe_table(sweep, args.rules))
    write_json(args.json, args, rows=sweep.rows)


if __name__ == "__main__":
    main()
