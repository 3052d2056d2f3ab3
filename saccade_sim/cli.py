"""Command line: ``saccade-sim run [CONFIG] [--set key=value ...] [--out DIR] [--checkpoint-every N]``,
``saccade-sim run --resume DIR``, ``saccade-sim sweep [CONFIG] --grid key=v1,v2 --seeds 0-4 --jobs N``,
``saccade-sim analyze RUN_DIR``, ``saccade-sim list`` and ``saccade-sim --version``.

CONFIG is a TOML file or a JSON one (a run folder's ``config.json`` re-runs that run). Exit statuses: 0 done;
2 usage, configuration or data error; 3 a layer diverged; 130 interrupted (Ctrl-C; a checkpoint is written
first when the run had started)."""
from __future__ import annotations

import argparse
import os
import shlex
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Sequence

from .compat import UnusableTorch, require_torch
from .errors import DivergenceError, Interrupted, SaccadeSimError
from .provenance import COMMAND_VARIABLE

#: exit statuses: 0 done, 2 usage / configuration / data / output error, 3 a layer diverged (a result, not a
#: typo), 128 + signal number when stopped by a signal: 130 SIGINT (Ctrl-C), 143 SIGTERM (a checkpoint was
#: written first when the run had started)
EXIT_ERROR, EXIT_DIVERGED, EXIT_INTERRUPTED, EXIT_TERMINATED = 2, 3, 130, 143


def _run(args: argparse.Namespace) -> int:
    from . import checkpoint, distributed, runfolder
    from .analysis.probe import probe_table
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
        held.push(lambda failed, *_: distributed.shutdown(clean=failed is None))  # barrier only after success
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
    print(probe_table(results))
    probes = results["probe_wall_s"] + results["decoding_wall_s"]
    print(f"{results['glimpses']} glimpses ({results['events']} events, {results['sim_time_ms'] / 1000:.1f} s "
          f"simulated) in {results['wall_s']:.1f} s wall = {results['glimpses_per_s']:.0f} glimpses/s (probes: "
          f"{probes:.1f} s more, not counted); outputs in {out.resolve()}")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from .sweep import parse_grid, parse_seeds, run_sweep

    table = run_sweep(args.config, parse_grid(args.grid), parse_seeds(args.seeds), args.out, jobs=args.jobs,
                      overrides=args.set, executor=args.executor, threads=args.threads,
                      slurm=dict(parse_grid(args.slurm, single=True)), progress=not args.quiet)
    print(table.markdown())
    if any(len(run.curve) > 2 for run in table.runs):  # budgets besides 0 and the end: probed during the runs
        print("\n" + table.curve_markdown())
    print(f"{len(table.runs)} runs: {table.count('done')} done now, {table.count('skipped')} finished before, "
          f"{table.count('diverged')} diverged, {table.count('failed')} failed; table.csv, table.md, curve.csv, "
          f"curve.md and runs.csv in {Path(args.out).resolve()}")
    return EXIT_ERROR if table.count("failed") else EXIT_DIVERGED if table.count("diverged") else 0


def _analyze(args: argparse.Namespace) -> int:
    from .analysis.report import analyze

    summary = analyze(args.run_dir, stimuli=args.stimuli, max_units=args.max_units, progress=not args.quiet)
    if not summary["complete"]:
        print(f"saccade-sim: note: {args.run_dir} is an unfinished run (no results.json): analysed the weights at "
              f"event {summary['events']} of {summary['run_events']}", file=sys.stderr)
    for name, layer in summary["layers"].items():
        stats = (f"mean Gabor R2 {layer['gabor_r2'][0]} (random weights {layer['gabor_r2'][1]}), mean OSI "
                 f"{layer['osi'][0]} (random {layer['osi'][1]})") if "orientation" not in layer else layer["orientation"]
        print(f"{name} {layer['field_kind']} {layer['field_shape']}: {stats}")
    moves = summary.get("eye_movements")
    if moves:
        print(f"eye movements ({moves['fixations']} fixations, {moves['timing']}): fixation mean "
              f"{moves['fixation_ms_mean']:.1f} ms (configured {moves['configured_fixation_ms_mean']:g})"
              + (f", KS p {moves['fixation_ks_p']:.3f}" if "fixation_ks_p" in moves else "")
              + (f", main sequence {moves['main_sequence_intercept_ms']:.2f} ms + "
                 f"{moves['main_sequence_slope_ms_per_deg']:.3f} ms/deg (configured {moves['configured_intercept_ms']:g}"
                 f" + {moves['configured_slope_ms_per_deg']:g})" if "main_sequence_slope_ms_per_deg" in moves else "")
              + f", saccade amplitude mean {moves['saccade_amplitude_deg_mean']:.2f} deg, coverage "
              f"{moves['coverage']:.3f}, revisit rate {moves['revisit_rate']:.3f}")
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


class _Version(argparse.Action):
    """``--version``: the package, torch and CUDA versions (imports torch only when asked)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, help="print the versions of saccade-sim, torch, CUDA, Python")

    def __call__(self, parser, namespace, values, option_string=None):
        require_torch()
        from .provenance import version_line

        print(version_line())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="saccade-sim", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action=_Version)
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
    swp = sub.add_parser("sweep", help="run every combination of a grid of settings over several seeds, each in "
                                       "its own run folder (resumable), and tabulate them")
    swp.add_argument("config", nargs="?", help="TOML or JSON config (default: the embedded default experiment)")
    swp.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                     help="a key and its values, e.g. --grid rule.name=oja,instar (repeatable: the product is run)")
    swp.add_argument("--seeds", default="0", help="seeds: 0-4, 0,3,7 or 2 (default 0)")
    swp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config key in every run (repeatable)")
    swp.add_argument("--out", default="runs/sweep", help="sweep folder (default runs/sweep)")
    swp.add_argument("--jobs", type=int, default=1, help="runs at once (local processes or cluster jobs)")
    swp.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1)")
    swp.add_argument("--executor", default="local", choices=("local", "submitit-local", "slurm"),
                     help="local processes, or submitit (its local executor, or SLURM)")
    swp.add_argument("--slurm", action="append", default=[], metavar="KEY=VALUE",
                     help="a submitit SLURM parameter, e.g. --slurm partition=gpu --slurm timeout_min=60")
    swp.add_argument("--quiet", action="store_true", help="no progress bar")
    swp.set_defaults(func=_sweep)
    ana = sub.add_parser("analyze", help="write receptive fields, RSA, sparseness, decoding and scan-path "
                                         "plots (and report.md) into a finished run folder")
    ana.add_argument("run_dir", help="a folder written by `saccade-sim run`")
    ana.add_argument("--stimuli", type=int, default=200, help="held-out stimuli to analyse (default 200)")
    ana.add_argument("--max-units", type=int, default=64, help="units per layer given a Gabor fit (default 64)")
    ana.add_argument("--quiet", action="store_true", help="no progress bar")
    ana.set_defaults(func=_analyze)
    lst = sub.add_parser("list", help="registered modalities, policies, rules, datasets and presets")
    lst.set_defaults(func=_list)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    previous = os.environ.get(COMMAND_VARIABLE)
    os.environ[COMMAND_VARIABLE] = shlex.join(["saccade-sim", *argv])  # provenance of every run it starts
    try:
        return _main(argv)
    finally:
        if previous is None:
            os.environ.pop(COMMAND_VARIABLE, None)
        else:
            os.environ[COMMAND_VARIABLE] = previous


def _main(argv: list[str]) -> int:
    from .signals import SIGNALS, SignalStop, name, terminate_raises

    try:
        args = build_parser().parse_args(argv)
        require_torch()
        with terminate_raises():  # SIGTERM outside a run's own handling stops like Ctrl-C, cleanups run
            return args.func(args)
    except UnusableTorch as exc:
        print(f"saccade-sim: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
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
