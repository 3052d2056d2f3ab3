"""The Hebbian family's released protocols on cifar10_5k (and mnist5k), reproduced from one command.

    PYTHONPATH=. python benchmarks/hebbian_reproduction.py                  # every part, 3 seeds (hours on 2 cores)
    PYTHONPATH=. python benchmarks/hebbian_reproduction.py --parts softhebb --seeds 0 1 --json a.json
    PYTHONPATH=. python benchmarks/hebbian_reproduction.py --merge a.json b.json ...   # tables of saved runs
    PYTHONPATH=. python benchmarks/hebbian_reproduction.py --full --set device=cuda  # the GPU run: configs/*_full.toml

Parts (``--parts``):
- ``softhebb``, ``miconi`` (both interventions), ``miconi_plain`` (none), ``sphere``, ``activation``: the shipped
  config ``configs/PART.toml`` (``--full``: ``configs/PART_full.toml`` where one exists), one run per seed
  through :class:`saccade_sim.experiment.Experiment` (what ``saccade-sim run`` does); a per-layer table of the
  probe's held-out test accuracy, the same architecture with its initial random weights, the raw input, and
  the paired gain trained - random (mean ± sd over seeds, how many seeds above); the best layer's gain
  seed by seed against the target +0.05;
- Miconi's interventions: layer 1 -> layer 3 of ``miconi_plain`` (decoding should fall) against ``miconi``
  (it should rise), seed by seed;
- ``curve``: one config (``--curve-config``, softhebb) run ``--curve-events`` events with the probe every
  ``--curve-every`` events (``probe.every_ms``): the trained layers' accuracy and gain over the random weights
  against the budget;
- ``zhou``: benchmarks/zhou_few_labels.py's few-label table with unit-length inputs;
- ``compare``: benchmarks/compare_rules.py's ranked table (every rule, 5 seeds, gains with standard errors).
Several invocations (e.g. two processes with one torch thread each) can run parts or seeds side by side;
``--merge`` prints the tables of their JSON files together.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import compare_rules
import zhou_few_labels
from common import arguments, machine, mean_std, paired_gain, parse, summary, table, write_json

from saccade_sim.config import load
from saccade_sim.experiment import Experiment

ROOT = Path(__file__).resolve().parents[1]
PROTOCOLS = ("softhebb", "miconi", "miconi_plain", "sphere", "activation")
PARTS = PROTOCOLS + ("curve", "zhou", "compare")
TARGET = 0.05  #: the best layer's gain over random weights the issue asks for (softhebb, miconi)


def config_path(part: str, full: bool) -> tuple[Path, list[str]]:
    """configs/PART.toml, or with ``full`` configs/PART_full.toml where it exists (miconi_plain: miconi_full.toml
    without the interventions), and the overrides that make it the part."""
    if full:
        name, extra = ("miconi", ["network.preset=miconi"]) if part == "miconi_plain" else (part, [])
        candidate = ROOT / "configs" / f"{name}_full.toml"
        if candidate.exists():
            return candidate, extra
    return ROOT / "configs" / f"{part}.toml", []


def run_config(path: Path, seed: int, overrides: list[str]) -> dict[str, Any]:
    """One run of a shipped config: results.json's tree plus the resolved config, history and decoding curve."""
    cfg = load(path, [f"seed={seed}", "run.progress=false", *overrides])
    exp = Experiment(cfg)
    start = time.perf_counter()
    results = exp.run()
    results.update(config=cfg.to_dict(), history=exp.history, decoding=exp.decoding,
                   total_s=time.perf_counter() - start, config_file=str(path.relative_to(ROOT)))
    return results


def protocol_table(part: str, runs: list[dict]) -> str:
    """Input, each layer, the best layer: trained, random weights, paired gain; and the run's budget."""
    layers = list(runs[0]["probe"]["layers"])
    rows = [{"representation": "input (raw)", "trained": mean_std([r["probe"]["baselines"]["input"] for r in runs])}]
    for name in layers:
        rows.append({"representation": name, "trained": mean_std([r["probe"]["layers"][name] for r in runs]),
                     "random weights": mean_std([r["probe"]["baselines"]["random"][name] for r in runs]),
                     "trained - random (paired)": paired_gain(runs, name)})
    best = [max(r["probe"]["layers"][n] - r["probe"]["baselines"]["random"][n] for n in layers) for r in runs]
    rows.append({"representation": "best layer - random", "trained - random (paired)":
                 f"{' '.join(f'{g:+.3f}' for g in best)} (seeds; >= +{TARGET} in {sum(g >= TARGET for g in best)}"
                 f"/{len(best)})"})
    cfg, p = runs[0]["config"], runs[0]["probe"]
    head = (f"{part}: {runs[0]['config_file']}, {runs[0]['events']} events x {cfg['eye']['batch']} images, "
            f"{p['n_train']}/{p['n_test']} probe ({cfg['probe']['classifier']}, pool {cfg['probe']['pool']}), "
            f"{len(runs)} seed(s); train {summary([r['wall_s'] for r in runs])['mean']:.0f} s, probe "
            f"{summary([r['probe_wall_s'] for r in runs])['mean']:.0f} s per run")
    return head + "\n" + table(rows, ["representation", "trained", "random weights", "trained - random (paired)"],
                               style="markdown")


def trend(run: dict) -> float:
    """Layer 3 minus layer 1 test accuracy of one run."""
    acc = list(run["probe"]["layers"].values())
    return acc[-1] - acc[0]


def interventions_table(runs: dict[str, list[dict]]) -> str:
    """Miconi without (miconi_plain) and with both interventions (miconi): each layer, and the L1 -> L3 trend."""
    variants = [v for v in ("miconi_plain", "miconi") if v in runs]
    layers = list(runs[variants[0]][0]["probe"]["layers"])
    rows = []
    for name in layers:
        rows.append({"layer": name, **{v: f"{mean_std([r['probe']['layers'][name] for r in runs[v]])} (random "
                                          f"{mean_std([r['probe']['baselines']['random'][name] for r in runs[v]])})"
                                       for v in variants}})
    rows.append({"layer": "layer3 - layer1", **{v: f"{mean_std([trend(r) for r in runs[v]], '+')} (falls in "
                                                   f"{sum(trend(r) < 0 for r in runs[v])}/{len(runs[v])} seeds)"
                                                for v in variants}})
    return table(rows, ["layer"] + variants, style="markdown")


def curve_table(run: dict) -> str:
    """The trained layers' accuracy over the budget (probe.every_ms), and their gain over the random weights."""
    random = run["probe"]["baselines"]["random"]
    layers = list(random)
    points = run["decoding"] + [{"event": run["events"], **run["probe"]["layers"]}]
    points = list({p["event"]: p for p in points}.values())
    batch = run["config"]["eye"]["batch"]
    rows = [{"events": p["event"], "images seen": p["event"] * batch,
             **{n: f"{p[n]:.3f} ({p[n] - random[n]:+.3f})" for n in layers}} for p in points]
    return (f"curve: {run['config_file']}, seed {run['seed']}; trained accuracy (gain over the random weights: "
            + ", ".join(f"{n} {random[n]:.3f}" for n in layers) + ")\n"
            + table(rows, ["events", "images seen"] + layers, style="markdown"))


def main() -> None:
    p = arguments(__doc__, "hebbian_reproduction")
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--full", action="store_true", help="configs/*_full.toml (full size, for a GPU)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override in every config")
    p.add_argument("--curve-config", choices=PROTOCOLS, default="softhebb")
    p.add_argument("--curve-events", type=int, default=2000)
    p.add_argument("--curve-every", type=int, default=250)
    p.add_argument("--compare-seeds", type=int, default=5)
    p.add_argument("--compare-events", type=int, default=1000)
    p.add_argument("--compare-probe", nargs=2, type=int, default=[2000, 1000], metavar=("TRAIN", "TEST"))
    p.add_argument("--zhou-steps", type=int, default=500)
    p.add_argument("--merge", nargs="+", metavar="JSON", help="do not run: the tables of the runs in these files")
    args = parse(p)
    if args.merge:
        runs: dict[str, Any] = {}
        for saved in (json.loads(Path(f).read_text()) for f in args.merge):
            for part, value in saved["runs"].items():
                runs[part] = runs.get(part, []) + value if isinstance(value, list) else value
    else:
        runs = {}
        for part in args.parts:
            if part in PROTOCOLS:
                path, extra = config_path(part, args.full)
                runs[part] = [run_config(path, s, [*extra, *args.set]) for s in args.seeds]
            elif part == "curve":
                path, extra = config_path(args.curve_config, args.full)
                every_ms = args.curve_every * 200.0  # eye.fixation_ms = 200
                runs[part] = run_config(path, args.seeds[0], [*extra, *args.set, f"run.events={args.curve_events}",
                                                              f"probe.every_ms={every_ms}"])
            elif part == "zhou":
                zargs = argparse.Namespace(data="mnist5k.npz", labels=[1, 5, 10, 50], seeds=len(args.seeds),
                                           hidden=100, steps=args.zhou_steps, batch=32, lr=0.2, code_scale=1.0,
                                           inputs="unit")
                runs[part] = {"args": vars(zargs), "results": zhou_few_labels.run(zargs)}
            else:
                cargs = argparse.Namespace(data="mnist5k.npz", seeds=args.compare_seeds, events=args.compare_events,
                                           channels=32, probe_train=args.compare_probe[0], probe_test=args.compare_probe[1])
                runs[part] = {"args": vars(cargs), "results": compare_rules.run_rules(cargs)}
            print(f"done {part}", flush=True)
    print(f"\nhebbian_reproduction; {machine()['summary']}")
    for part in PROTOCOLS:
        if part in runs:
            print("\n" + protocol_table(part, runs[part]))
    if "miconi" in runs or "miconi_plain" in runs:
        print("\nMiconi's interventions (layer 1 -> layer 3)\n" + interventions_table(runs))
    if "curve" in runs:
        print("\n" + curve_table(runs["curve"]))
    if "zhou" in runs:
        print("\n" + zhou_few_labels.few_label_table(runs["zhou"]["results"], argparse.Namespace(**runs["zhou"]["args"])))
    if "compare" in runs:
        c = argparse.Namespace(**runs["compare"]["args"])
        print(f"\ncompare_rules: {c.data}, {c.events} events x 16 glimpses, conv {c.channels}x5x5 + relu + maxpool 2, "
              f"ridge probe {c.probe_train}/{c.probe_test}, {c.seeds} seeds\n" + compare_rules.ranked_table(runs["compare"]["results"]))
    write_json(args.json, args, runs=runs)


if __name__ == "__main__":
    main()
