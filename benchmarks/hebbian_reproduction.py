"""The Hebbian family's released protocols on cifar10_5k (and mnist5k), reproduced from one command.

    PYTHONPATH=. python benchmarks/hebbian_reproduction.py                  # every part, 3 seeds (hours on 2 cores)
    PYTHONPATH=. python benchmarks/hebbian_reproduction.py --parts softhebb --seeds 0 1 2 --jobs 2   # 2 runs at once
    PYTHONPATH=. python benchmarks/hebbian_reproduction.py --full --set device=cuda  # the GPU run: configs/*_full.toml

Every run is a run of :func:`saccade_sim.sweep.run_sweep`, in its own folder under ``--out``/PART (``--jobs N``
runs N at once): the same command again reads the finished runs back (and resumes interrupted ones), so a
part's seeds can be run in several sittings and their table printed by the command that names them all.

Parts (``--parts``):
- ``softhebb``, ``miconi`` (both interventions), ``miconi_plain`` (none), ``sphere``, ``activation``: the shipped
  config ``configs/PART.toml`` (``--full``: ``configs/PART_full.toml`` where one exists), one run per seed
  (what ``saccade-sim run`` does); a per-layer table of the probe's held-out test accuracy, the same
  architecture with its initial random weights, the raw input, and the paired gain trained - random (mean ± sd
  over seeds, how many seeds above: the sweep's table); the best layer's gain seed by seed against the target
  +0.05;
- Miconi's interventions: layer 1 -> layer 3 of ``miconi_plain`` (decoding should fall) against ``miconi``
  (it should rise), seed by seed;
- ``labels``: each finished run of ``miconi_plain`` and ``miconi`` (run first where missing): its label curve
  (:meth:`saccade_sim.evaluation.Evaluation.label_curve`, trained and random weights, ``--label-sizes``
  labelled training images, kept in the run folder as label_curve.json): each layer and layer 3 - layer 1
  against the number of labels;
- ``curve``: one config (``--curve-config``, softhebb) run ``--curve-events`` events per seed with the probe
  every ``--curve-every`` events (``probe.every_ms``): the sweep's learning curve, the trained layers' accuracy
  and paired gain over the random weights against the budget;
- ``zhou``: benchmarks/zhou_few_labels.py's few-label table with unit-length inputs;
- ``compare``: benchmarks/compare_rules.py's ranked table (every rule, 5 seeds, gains with standard errors).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Sequence

import compare_rules
import zhou_few_labels
from common import (arguments, curve_settings, label_curves, machine, mean_std, parse, row_text, run_records,
                    summary, sweep_arguments, table, write_json)

from saccade_sim.sweep import SweepTable, run_sweep

ROOT = Path(__file__).resolve().parents[1]
PROTOCOLS = ("softhebb", "miconi", "miconi_plain", "sphere", "activation")
PARTS = PROTOCOLS + ("curve", "labels", "zhou", "compare")
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


def sweep(part: str, config: str, args: argparse.Namespace, overrides: Sequence[str] = ()) -> SweepTable:
    """The shipped ``config`` over ``--seeds`` as the sweep ``--out``/PART (finished runs are read back)."""
    path, extra = config_path(config, args.full)
    overrides = [*extra, *args.set, *overrides]
    return run_sweep(path, seeds=args.seeds, out=Path(args.out) / part, overrides=overrides, jobs=args.jobs,
                     threads=args.threads, echo=lambda line: print(f"{part}: {line}", flush=True))


def finished(sweep: SweepTable) -> list[dict[str, Any]]:
    """The results.json trees of the sweep's finished runs."""
    return [r.results for r in sweep.runs if r.results]


def protocol_table(part: str, sweep: SweepTable, source: str) -> str:
    """Input, each layer, the best layer: trained, random weights, paired gain; and the run's budget
    (``source``: the config file)."""
    runs = finished(sweep)
    layers = list(runs[0]["probe"]["layers"])
    rows = [{"representation": "input (raw)", "trained": row_text(sweep.row("base", "input"), "accuracy")}]
    for name in layers:
        row = sweep.row("base", name)
        rows.append({"representation": name, "trained": row_text(row, "accuracy"),
                     "random weights": row_text(row, "random"), "trained - random (paired)": row_text(row, "gain")})
    best = [max(r["probe"]["layers"][n] - r["probe"]["baselines"]["random"][n] for n in layers) for r in runs]
    rows.append({"representation": "best layer - random", "trained - random (paired)":
                 f"{' '.join(f'{g:+.3f}' for g in best)} (seeds; >= +{TARGET} in {sum(g >= TARGET for g in best)}"
                 f"/{len(best)})"})
    cfg, p = sweep.runs[0].tree, runs[0]["probe"]
    head = (f"{part}: {source}, {runs[0]['events']} events x {cfg['eye']['batch']} images, "
            f"{p['n_train']}/{p['n_test']} probe ({cfg['probe']['classifier']}, pool {cfg['probe']['pool']}), "
            f"{len(runs)} seed(s); train {summary([r['wall_s'] for r in runs])['mean']:.0f} s, probe "
            f"{summary([r['probe_wall_s'] for r in runs])['mean']:.0f} s per run")
    return head + "\n" + table(rows, ["representation", "trained", "random weights", "trained - random (paired)"],
                               style="markdown")


def trend(run: dict) -> float:
    """Layer 3 minus layer 1 test accuracy of one run."""
    acc = list(run["probe"]["layers"].values())
    return acc[-1] - acc[0]


def interventions_table(sweeps: dict[str, SweepTable]) -> str:
    """Miconi without (miconi_plain) and with both interventions (miconi): each layer, and the L1 -> L3 trend."""
    variants = [v for v in ("miconi_plain", "miconi") if v in sweeps and finished(sweeps[v])]
    layers = list(finished(sweeps[variants[0]])[0]["probe"]["layers"])
    rows = []
    for name in layers:
        rows.append({"layer": name, **{v: f"{row_text(sweeps[v].row('base', name), 'accuracy')} (random "
                                          f"{row_text(sweeps[v].row('base', name), 'random')})" for v in variants}})
    trends = {v: [trend(r) for r in finished(sweeps[v])] for v in variants}
    rows.append({"layer": "layer3 - layer1", **{v: f"{mean_std(trends[v], '+')} (falls in "
                                                   f"{sum(t < 0 for t in trends[v])}/{len(trends[v])} seeds)"
                                                for v in variants}})
    return table(rows, ["layer"] + variants, style="markdown")


def labels_table(curves: dict[str, list[dict[str, Any]]], sizes: Sequence[int]) -> str:
    """Per variant and number of labels: each layer's trained accuracy, layer 3 - layer 1 trained and with
    random weights (mean ± sd, seeds rising)."""
    rows = []
    for variant, runs in curves.items():
        if not runs:
            continue
        for n in sizes:
            trained = [r["trained"][str(n)] for r in runs]
            rise = [t[-1] - t[0] for t in trained]
            rise_random = [r["random"][str(n)][-1] - r["random"][str(n)][0] for r in runs]
            rows.append({"variant": variant, "labels": n,
                         **{f"layer{i + 1}": mean_std([t[i] for t in trained]) for i in range(len(trained[0]))},
                         "layer3 - layer1": f"{mean_std(rise, '+')} (rises in {sum(d > 0 for d in rise)}/{len(rise)})",
                         "random: layer3 - layer1": mean_std(rise_random, "+")})
    columns = ["variant", "labels"] + [k for k in rows[0] if k.startswith("layer") and k[5:].isdigit()]
    return table(rows, columns + ["layer3 - layer1", "random: layer3 - layer1"], style="markdown")


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
    p.add_argument("--label-sizes", nargs="+", type=int, default=[500, 1000, 2000, 3000, 5000],
                   help="labels: the probe's numbers of labelled training images")
    sweep_arguments(p, "hebbian_reproduction")
    args = parse(p)
    sweeps: dict[str, SweepTable] = {}
    other: dict[str, Any] = {}
    for part in args.parts:
        if part in PROTOCOLS:
            sweeps[part] = sweep(part, part, args)
        elif part == "curve":
            path, extra = config_path(args.curve_config, args.full)
            settings = curve_settings(path, [*extra, *args.set], args.curve_events, args.curve_every)
            sweeps[part] = sweep(part, args.curve_config, args, settings)
        elif part == "labels":
            for variant in ("miconi_plain", "miconi"):  # finished runs are read back, missing ones run
                if variant not in sweeps:
                    sweeps[variant] = sweep(variant, variant, args)
            other[part] = {v: label_curves(sweeps[v], args.label_sizes) for v in ("miconi_plain", "miconi")}
        elif part == "zhou":
            zargs = argparse.Namespace(data="mnist5k.npz", labels=[1, 5, 10, 50], seeds=len(args.seeds),
                                       hidden=100, steps=args.zhou_steps, batch=32, lr=0.2, code_scale=1.0,
                                       inputs="unit")
            other[part] = {"args": vars(zargs), "results": zhou_few_labels.run(zargs)}
        else:
            cargs = argparse.Namespace(data="mnist5k.npz", seeds=args.compare_seeds, events=args.compare_events,
                                       channels=32, probe_train=args.compare_probe[0], probe_test=args.compare_probe[1],
                                       out=str(Path(args.out) / part), jobs=args.jobs, threads=args.threads)
            other[part] = {"args": vars(cargs), "results": compare_rules.run_rules(cargs)}
        print(f"done {part}", flush=True)
    print(f"\nhebbian_reproduction; {machine()['summary']}; runs in {Path(args.out).resolve()}")
    for part in PROTOCOLS:
        if part in sweeps and finished(sweeps[part]):
            source = config_path(part, args.full)[0].relative_to(ROOT)
            print("\n" + protocol_table(part, sweeps[part], str(source)))
    if any(v in sweeps and finished(sweeps[v]) for v in ("miconi", "miconi_plain")):
        print("\nMiconi's interventions (layer 1 -> layer 3)\n" + interventions_table(sweeps))
    if any(other.get("labels", {}).values()):
        print("\nMiconi's layer 1 -> layer 3 against the probe's labelled training images (ridge, the config's "
              "test split)\n" + labels_table(other["labels"], args.label_sizes))
    if "curve" in sweeps:
        source = config_path(args.curve_config, args.full)[0].relative_to(ROOT)
        print(f"\ncurve: {source}, {args.curve_events} events, probed every {args.curve_every} events; trained "
              f"accuracy against the random weights (paired over seeds)\n" + sweeps["curve"].curve_markdown())
    if "zhou" in other:
        zhou = other["zhou"]
        print("\n" + zhou_few_labels.few_label_table(zhou["results"], argparse.Namespace(**zhou["args"])))
    if "compare" in other:
        c = argparse.Namespace(**other["compare"]["args"])
        print(f"\ncompare_rules: {c.data}, {c.events} events x 16 glimpses, conv {c.channels}x5x5 + relu + maxpool 2, "
              f"ridge probe {c.probe_train}/{c.probe_test}, {c.seeds} seeds\n"
              + compare_rules.ranked_table(other["compare"]["results"]))
    write_json(args.json, args, runs={part: run_records(s) for part, s in sweeps.items()},
               tables={part: s.curve if part == "curve" else s.rows for part, s in sweeps.items()}, **other)


if __name__ == "__main__":
    main()
