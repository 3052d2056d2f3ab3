"""Per-layer linear-probe table of CLAPP and CLAPP-s against the same architecture with random weights
and the raw-input baseline, on real image data, from one command:

    PYTHONPATH=. python benchmarks/clapp_table.py --threads 1          # the README table (embedded photos)
    PYTHONPATH=. python benchmarks/clapp_table.py --data mnist5k.npz --seeds 0 1 2 --set rule.lr=0.02

Every run goes through :class:`saccade_sim.experiment.Experiment` (the SimPy engine and the probe of
``saccade-sim run``). Prints one table (mean +- std over seeds) and writes every run's results to JSON.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from saccade_sim.config import apply_override
from saccade_sim.experiment import Experiment

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

#: The tuned CLAPP setting of the README table (everything else: saccade-sim defaults).
BASE = {
    "eye": {"batch": 16, "jump_prob": 0.3},
    "network": {"preset": "small"},
    "rule": {"optimizer": "sgd", "lr": 0.05},
}


def source(name: str) -> str:
    """``natural`` (the embedded default) or a file name in ../shared/data."""
    return name if name == "natural" else str(DATA / name)


def run_one(rule: str, data: str, seed: int, glimpses: int, probe: tuple[int, int], overrides: list[str]) -> dict:
    raw = json.loads(json.dumps(BASE))
    raw.update({"seed": seed, "data": {"source": source(data)}, "run": {"glimpses": glimpses, "progress": False},
                "probe": {"train": probe[0], "test": probe[1]}})
    raw["rule"]["name"] = rule
    for assignment in overrides:
        apply_override(raw, assignment)
    exp = Experiment(raw)
    results = exp.run()
    results["config"] = exp.config.to_dict()
    return results


def mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} +- {statistics.stdev(values):.3f}"


def table(runs: dict[str, list[dict]]) -> str:
    """Rows: input, then each layer; columns: random weights, then each rule's trained accuracy."""
    rules = list(runs)
    first = runs[rules[0]]
    layers = list(first[0]["probe"]["layers"])
    rows = [["representation", "random weights"] + rules]
    rows.append(["input (raw glimpses)", mean_std([r["probe"]["baselines"]["input"] for r in first])]
                + [""] * len(rules))
    for name in layers:
        rows.append([name, mean_std([r["probe"]["baselines"]["random"][name] for r in first])]
                    + [mean_std([r["probe"]["layers"][name] for r in runs[rule]]) for rule in rules])
    rows.append(["train wall s / run", ""] + [f"{statistics.mean(r['wall_s'] for r in runs[rule]):.0f}"
                                              for rule in rules])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    p = first[0]["probe"]
    lines.append(f"(ridge-probe test accuracy, {p['n_test']} held-out stimuli, probe trained on {p['n_train']}; "
                 f"chance {p['chance']:.3f}; {len(first)} seed(s))")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="natural", help="natural, or a file in ../shared/data")
    parser.add_argument("--rules", nargs="+", default=["clapp", "clapp_s"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--glimpses", type=int, default=1500, help="glimpse events per run")
    parser.add_argument("--probe", nargs=2, type=int, default=[2000, 1000], metavar=("TRAIN", "TEST"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument("--json", default="benchmarks/clapp_table.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    runs = {rule: [run_one(rule, args.data, s, args.glimpses, tuple(args.probe), args.set) for s in args.seeds]
            for rule in args.rules}
    print(f"data {args.data}, {args.glimpses} events x {runs[args.rules[0]][0]['config']['eye']['batch']} eyes, "
          f"overrides {args.set or 'none'}; {time.perf_counter() - start:.0f} s in all")
    print(table(runs))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"args": vars(args), "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
