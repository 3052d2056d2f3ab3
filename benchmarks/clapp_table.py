"""Per-layer linear-probe table of CLAPP and CLAPP-s against the same architecture with random weights
and the raw-input baseline, on real image data, from one command:

    PYTHONPATH=. python benchmarks/clapp_table.py --threads 1          # the README table (embedded photos)
    PYTHONPATH=. python benchmarks/clapp_table.py --data mnist5k.npz --seeds 0 1 2 --set rule.lr=0.02
    PYTHONPATH=. python benchmarks/clapp_table.py --merge a.json b.json   # runs saved by parallel invocations

Every run goes through :class:`saccade_sim.experiment.Experiment` (the SimPy engine and the probe of
``saccade-sim run``). Prints one table (mean +- sd over seeds, and each trained layer's paired gain over the
same seed's random weights) and writes every run's results to JSON.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from common import DATA, arguments, parse, summary, table, write_json

from saccade_sim.config import apply_override
from saccade_sim.experiment import Experiment

#: The setting of the README table, spelled out (these are also saccade-sim's defaults; the rule's optimiser
#: and learning rate are its own defaults, Adam 5e-4 for CLAPP and CLAPP-s).
BASE = {
    "eye": {"batch": 16, "jump_prob": 0.3},
    "network": {"preset": "small"},
    "rule": {},
}


def source(name: str) -> str:
    """``natural`` (the embedded default) or a file name in ../shared/data."""
    return name if name == "natural" else str(DATA / name)


def run_one(rule: str, data: str, seed: int, glimpses: int, probe: tuple[int, int], overrides: list[str]) -> dict:
    raw = json.loads(json.dumps(BASE))
    raw.update({"seed": seed, "data": {"source": source(data)}, "run": {"events": glimpses, "progress": False},
                "probe": {"train": probe[0], "test": probe[1]}})
    raw["rule"]["name"] = rule
    for assignment in overrides:
        apply_override(raw, assignment)
    exp = Experiment(raw)
    results = exp.run()
    results["config"] = exp.config.to_dict()
    return results


def mean_std(values: list[float], sign: str = "") -> str:
    """'mean +- sd' of ``values`` (the value alone for one); ``sign = "+"`` prints the mean's sign."""
    s = summary(values)
    mean = f"{s['mean']:{sign}.3f}"
    return mean if s["n"] == 1 else f"{mean} +- {s['sd']:.3f}"


def paired_gain(runs: list[dict], layer: str) -> str:
    """Trained minus random-weights accuracy of ``layer``, seed by seed: 'mean +- sd (k/n above)'."""
    d = [r["probe"]["layers"][layer] - r["probe"]["baselines"]["random"][layer] for r in runs]
    return f"{mean_std(d, '+')} ({sum(v > 0 for v in d)}/{len(d)} above)"


def probe_table(runs: dict[str, list[dict]]) -> str:
    """Rows: input, then each layer; columns: random weights, then each rule's trained accuracy."""
    rules = list(runs)
    first = runs[rules[0]]
    columns = ["representation", "random weights"] + rules
    rows = [{"representation": "input (raw glimpses)",
             "random weights": mean_std([r["probe"]["baselines"]["input"] for r in first])}]
    for name in first[0]["probe"]["layers"]:
        rows.append({"representation": name,
                     "random weights": mean_std([r["probe"]["baselines"]["random"][name] for r in first]),
                     **{rule: mean_std([r["probe"]["layers"][name] for r in runs[rule]]) for rule in rules}})
    rows += [{"representation": f"{name} - random (paired)", **{rule: paired_gain(runs[rule], name) for rule in rules}}
             for name in first[0]["probe"]["layers"]]
    rows.append({"representation": "train wall s / run",
                 **{rule: f"{summary([r['wall_s'] for r in runs[rule]])['mean']:.0f}" for rule in rules}})
    p = first[0]["probe"]
    return (table(rows, columns, style="left") + f"\n(ridge-probe test accuracy, {p['n_test']} held-out stimuli, "
            f"probe trained on {p['n_train']}; chance {p['chance']:.3f}; {len(first)} seed(s))")


def main() -> None:
    parser = arguments(__doc__, "clapp_table")
    parser.add_argument("--data", default="natural", help="natural, or a file in ../shared/data")
    parser.add_argument("--rules", nargs="+", default=["clapp", "clapp_s"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--glimpses", type=int, default=40000, help="glimpse events per run")
    parser.add_argument("--probe", nargs=2, type=int, default=[2000, 1000], metavar=("TRAIN", "TEST"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--merge", nargs="+", metavar="JSON",
                        help="do not run: print and write the table of the runs saved in these JSON files")
    parser.set_defaults(json="benchmarks/clapp_table.json")
    args = parse(parser)
    start = time.perf_counter()
    if args.merge:
        saved = [json.loads(Path(p).read_text()) for p in args.merge]
        runs = {rule: rule_runs for s in saved for rule, rule_runs in s["runs"].items()}
        overrides = saved[0]["args"]["set"]
    else:
        runs = {rule: [run_one(rule, args.data, s, args.glimpses, tuple(args.probe), args.set) for s in args.seeds]
                for rule in args.rules}
        overrides = args.set
    cfg = next(iter(runs.values()))[0]["config"]
    print(f"data {Path(cfg['data']['source']).name}, {cfg['run']['events']} events x {cfg['eye']['batch']} eyes, "
          f"overrides {overrides or 'none'}; {time.perf_counter() - start:.0f} s")
    print(probe_table(runs))
    write_json(args.json, args, runs=runs)


if __name__ == "__main__":
    main()
