"""Command line: ``saccade-sim run [CONFIG] [--set key=value ...] [--out DIR] [--checkpoint-every N]``,
``saccade-sim run --resume DIR``, ``saccade-sim analyze RUN_DIR`` and ``saccade-sim list``."""
from __future__ import annotations

import argparse
import os
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Sequence

from .errors import DivergenceError, Interrupted, SaccadeSimError

#: exit statuses: 0 done, 2 usage / configuration / data / output error, 3 a layer diverged (a result, not a
#: typo), 128 + signal number when stopped by a signal: 130 SIGINT (Ctrl-C), 143 SIGTERM (a checkpoint was
#: written first when the run had started)
EXIT_ERROR, EXIT_DIVERGED, EXIT_INTERRUPTED, EXIT_TERMINATED = 2, 3, 130, 143


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
    from . import checkpoint, distributed, runfolder
    from .config import load
    from .errors import ConfigError
    from .experiment import Experiment

    overrides = list(args.set)
    if args.checkpoint_every is not None:
        overrides.append(f"run.checkpoint_every={args.checkpoint_every}")
    if args.threads is not None:
        overrides.append(f"run.threads={args.threads}")
    if args.quiet:
        overrides.append("run.progress=false")
    first_rank = os.environ.get("RANK", "0") == "0"  # torchrun's rank 0 (or the only process): the folder's writer
    with ExitStack() as held:  # unwound last-in first-out: folder lock, process group
        if args.resume:
            if args.config or args.out or args.overwrite:
                raise ConfigError("--resume DIR continues the run in DIR with its saved configuration; "
                                  "do not pass CONFIG, --out or --overwrite with it")
            out = Path(args.resume)
            runfolder.require_folder(out, "--resume")
            if first_rank:
                held.enter_context(runfolder.lock(out))  # one writer per run folder, before reading it
            state, cfg = checkpoint.load_checkpoint(out, overrides)
        else:
            cfg = load(args.config, overrides)
            out = Path(args.out or f"runs/{cfg.rule.name}-{cfg.data.modality}-seed{cfg.seed}")
            if first_rank:
                runfolder.check_out(out, args.overwrite)  # early; checked again under the lock
        if cfg.run.threads:
            import torch

            torch.set_num_threads(cfg.run.threads)
        world = distributed.init_from_env(cfg.distributed, cfg.device)  # torchrun: join the ranks
        held.callback(distributed.shutdown)
        if args.resume:
            exp = checkpoint.restore(out, state, cfg)
        else:
            exp = Experiment(cfg)  # bad data or config fail here, before the folder is touched
            checkpoint.check_checkpointable(exp)
            if world.is_main:
                runfolder.create(out)
                held.enter_context(runfolder.lock(out))
                runfolder.prepare(out, args.overwrite)
        results = checkpoint.run_in_folder(exp, out)
    if not world.is_main:
        return 0
    print(format_probe_table(results))
    print(f"{results['glimpses']} glimpses ({results['events']} events, {results['sim_time_ms'] / 1000:.1f} s "
          f"simulated) in {results['wall_s']:.1f} s wall = {results['glimpses_per_s']:.0f} glimpses/s; "
          f"outputs in {out}")
    return 0


def _analyze(args: argparse.Namespace) -> int:
    from .analysis.report import analyze

    summary = analyze(args.run_dir, stimuli=args.stimuli, max_units=args.max_units)
    if not summary["complete"]:
        print(f"saccade-sim: note: {args.run_dir} is an unfinished run (no results.json): analysed the weights at "
              f"event {summary['events']} of {summary['run_events']}", file=sys.stderr)
    for name, layer in summary["layers"].items():
        print(f"{name} {layer['field_kind']} {layer['field_shape']}: mean Gabor R2 {layer['gabor_r2'][0]} "
              f"(random weights {layer['gabor_r2'][1]}), mean OSI {layer['osi'][0]} (random {layer['osi'][1]})")
    print(f"plots and report.md written into {args.run_dir}")
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
    run.add_argument("--checkpoint-every", type=int, metavar="N",
                     help="write checkpoint.pt every N glimpse events (sets run.checkpoint_every)")
    run.add_argument("--resume", metavar="DIR", help="continue the unfinished run in DIR from its checkpoint")
    run.add_argument("--threads", type=int, metavar="N",
                     help="torch CPU threads (sets run.threads; 0 = torch's default, one per core)")
    run.set_defaults(func=_run)
    ana = sub.add_parser("analyze", help="write receptive fields, RSA, sparseness, decoding and scan-path "
                                         "plots (and report.md) into a finished run folder")
    ana.add_argument("run_dir", help="a folder written by `saccade-sim run`")
    ana.add_argument("--stimuli", type=int, default=200, help="held-out stimuli to analyse (default 200)")
    ana.add_argument("--max-units", type=int, default=64, help="units per layer given a Gabor fit (default 64)")
    ana.set_defaults(func=_analyze)
    lst = sub.add_parser("list", help="registered modalities, policies, rules, datasets and presets")
    lst.set_defaults(func=_list)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from .signals import SIGNALS, SignalStop, name, terminate_raises

    args = build_parser().parse_args(argv)
    try:
        with terminate_raises():  # SIGTERM outside a run's own handling stops like Ctrl-C, cleanups run
            return args.func(args)
    except Interrupted as exc:
        print(f"saccade-sim: {exc}", file=sys.stderr)
        return 128 + exc.signum
    except DivergenceError as exc:
        print(f"saccade-sim: error: {exc}", file=sys.stderr)
        return EXIT_DIVERGED
    except SaccadeSimError as exc:
        print(f"saccade-sim: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt as exc:
        signum = exc.signum if isinstance(exc, SignalStop) else SIGNALS[0]
        print(f"saccade-sim: stopped by {name(signum)}; no training was in progress (nothing to resume)",
              file=sys.stderr)
        return 128 + signum
