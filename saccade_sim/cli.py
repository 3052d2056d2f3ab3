"""Command line: ``saccade-sim run [CONFIG] [--set key=value ...] [--out DIR]`` and ``saccade-sim list``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

from .errors import SaccadeSimError


def format_probe_table(results: dict[str, Any]) -> str:
    """The per-layer probe table: trained accuracy next to the random-weights and raw-input baselines."""
    probe = results.get("probe") or {}
    if not probe:
        return "(probe disabled)"
    rows = [("representation", "trained", "random weights")]
    rows.append(("input (raw glimpses)", f"{probe['baselines']['input']:.3f}", ""))
    for name, acc in probe["layers"].items():
        rows.append((name, f"{acc:.3f}", f"{probe['baselines']['random'][name]:.3f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append(f"(test accuracy, {probe['n_test']} held-out stimuli; probe trained on {probe['n_train']}; "
                 f"chance {probe['chance']:.3f})")
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    from .config import load
    from .experiment import Experiment

    cfg = load(args.config, args.set)
    out = Path(args.out or f"runs/{cfg.rule.name}-{cfg.data.modality}-seed{cfg.seed}")
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise SaccadeSimError(f"{out}: output folder is not empty (holds another run); "
                              "pass --overwrite or choose another --out")
    if args.quiet:
        cfg.run.progress = False
    exp = Experiment(cfg)
    results = exp.run()
    exp.save(out)
    print(format_probe_table(results))
    print(f"{results['glimpses']} glimpses ({results['events']} events, {results['sim_time_ms'] / 1000:.1f} s "
          f"simulated) in {results['wall_s']:.1f} s wall = {results['glimpses_per_s']:.0f} glimpses/s; "
          f"outputs in {out}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from . import plugins  # noqa: F401
    from agents.layers import PRESETS
    from .registry import DATASETS, MODALITIES, POLICIES, RULES, summary

    for title, registry in (("modalities", MODALITIES), ("policies", POLICIES), ("rules", RULES),
                            ("datasets", DATASETS)):
        print(f"{title}:")
        for name, obj in registry.items():
            print(f"  {name:<14} {summary(obj)}")
    print("network presets:")
    for name, specs in PRESETS.items():
        print(f"  {name:<14} " + " | ".join(f"{s.kind} {s.channels}" + (f"+pool{s.pool}" if s.pool > 1 else "")
                                            + (f" kwta{s.kwta}" if s.kwta else "") + (f" prune{s.prune:g}" if s.prune else "")
                                            + (f" {s.activation}" if s.activation != "relu" else "") for s in specs))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="saccade-sim", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="simulate an experiment and probe its layers")
    run.add_argument("config", nargs="?", help="TOML config (default: the embedded default experiment)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config key, e.g. --set rule.name=instar (repeatable)")
    run.add_argument("--out", help="output folder (default runs/RULE-MODALITY-seedSEED)")
    run.add_argument("--overwrite", action="store_true", help="write into a folder that holds another run")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.set_defaults(func=_run)
    lst = sub.add_parser("list", help="registered modalities, policies, rules, datasets and presets")
    lst.set_defaults(func=_list)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SaccadeSimError as exc:
        print(f"saccade-sim: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("saccade-sim: interrupted", file=sys.stderr)
        return 130
