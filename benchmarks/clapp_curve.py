"""CLAPP learning curve: probe tables (trained, random-weights twin, raw input) per layer at several budgets.

    PYTHONPATH=. python benchmarks/clapp_curve.py --config configs/clapp.toml --seeds 0 1 2 \\
        --budgets 2500 5000 10000 20000                    # CIFAR-10 (the config's source)
    PYTHONPATH=. python benchmarks/clapp_curve.py --set data.source=natural ...   # the embedded photographs
    PYTHONPATH=. python benchmarks/clapp_curve.py --config default --budgets 10000 40000  # the embedded default job
    PYTHONPATH=. python benchmarks/clapp_curve.py --merge a.json b.json           # seeds run in separate processes

One run per seed, as long as the largest budget (a schedule's horizon is that run's length); at each budget
the layers are probed (the ridge probe of the config's ``[probe]`` table, held-out test split). The random
twin is the same architecture with the run's initial weights; the input is the raw glimpses. Each figure is
the mean +- sd over seeds, and each gain is paired: trained - random of the same seed, with how many seeds
are above.
"""
from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import arguments, machine, parse, table  # noqa: E402

from saccade_sim.config import load  # noqa: E402
from saccade_sim.experiment import Experiment  # noqa: E402


def curve(config: str, seed: int, budgets: list[int], overrides: list[str]) -> dict:
    """One seed's run: raw-input and random-twin accuracies, then per budget the layers' accuracies."""
    cfg = load(None if config == "default" else config, [*overrides, f"seed={seed}", f"run.events={max(budgets)}", "run.progress=false"])
    exp = Experiment(cfg)
    names = [a.name for a in exp.agents]
    start = time.perf_counter()
    random = exp.probe_scores(exp.initial_layers)
    out = {"seed": seed, "input": random[0], "random": dict(zip(names, random[1:])), "budgets": [],
           "glimpses_per_event": cfg.eye.batch, "probe_s": time.perf_counter() - start}
    for budget in sorted(budgets):
        exp.simulate(budget - exp.eye.event)
        start = time.perf_counter()
        scores = exp.probe_scores(exp.layers, with_input=False)
        history = exp.history[-1] if exp.history else {}
        out["budgets"].append({"events": budget, "train_s": exp.wall_s, "probe_s": time.perf_counter() - start,
                               "layers": dict(zip(names, scores)),
                               "loss": {n: history.get(f"{n}/loss") for n in names}})
        print(f"seed {seed} events {budget}: " + " ".join(f"{n} {s:.3f}" for n, s in zip(names, scores))
              + f" (random {' '.join(f'{random[i + 1]:.3f}' for i in range(len(names)))}, input {random[0]:.3f}; "
              f"{exp.wall_s:.0f} s)", flush=True)
    return out


def ms(values: list[float]) -> str:
    return f"{statistics.fmean(values):.3f} +- {statistics.stdev(values) if len(values) > 1 else 0.0:.3f}"


def report(runs: list[dict]) -> str:
    """The learning-curve table: per budget and layer, trained, random twin and paired gain over seeds."""
    names = list(runs[0]["random"])
    rows = [{"events": "0", "layer": "input (raw glimpses)", "trained": ms([r["input"] for r in runs])}]
    for n in names:
        rows.append({"events": "0", "layer": n, "trained": "", "random twin": ms([r["random"][n] for r in runs])})
    for i, point in enumerate(runs[0]["budgets"]):
        for n in names:
            trained = [r["budgets"][i]["layers"][n] for r in runs]
            gains = [t - r["random"][n] for t, r in zip(trained, runs)]
            rows.append({"events": str(point["events"]), "layer": n, "trained": ms(trained),
                         "random twin": ms([r["random"][n] for r in runs]),
                         "gain (paired)": f"{ms(gains)} ({sum(g > 0 for g in gains)}/{len(gains)} above)",
                         "train s": f"{statistics.fmean(r['budgets'][i]['train_s'] for r in runs):.0f}"})
    return table(rows, ["events", "layer", "trained", "random twin", "gain (paired)", "train s"], style="markdown")


def main() -> None:
    parser = arguments(__doc__, "clapp_curve")
    parser.add_argument("--config", default="configs/clapp.toml", help="a config file, or 'default' (the embedded job)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budgets", type=int, nargs="+", default=[2500, 5000, 10000, 20000])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--merge", nargs="+", metavar="JSON", help="print the table of saved runs and exit")
    args = parse(parser)
    if args.merge:
        saved = [json.loads(Path(p).read_text()) for p in args.merge]
        runs = sorted((r for s in saved for r in s["runs"]), key=lambda r: r["seed"])
        head = saved[0]
    else:
        runs = [curve(args.config, s, args.budgets, args.set) for s in args.seeds]
        head = {"machine": machine(), "args": vars(args), "runs": runs}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(head, indent=2))
    a = head["args"]
    print(f"\nclapp_curve: {a['config']} {' '.join(a['set']) or ''}; {len(runs)} seed(s) "
          f"{[r['seed'] for r in runs]}; {head['machine']['summary']}, {head['machine']['date']}, "
          f"{head['machine']['threads']} thread(s) per run")
    print(report(runs))
    if not args.merge:
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
