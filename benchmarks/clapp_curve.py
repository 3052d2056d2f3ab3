"""CLAPP learning curve: probe tables (trained, random-weights twin, raw input) per layer at several budgets.

    PYTHONPATH=. python benchmarks/clapp_curve.py --config configs/clapp.toml --seeds 0 1 2 --jobs 2 \\
        --budgets 2500 5000 10000 20000                    # CIFAR-10 (the config's source)
    PYTHONPATH=. python benchmarks/clapp_curve.py --set data.source=natural ...   # the embedded photographs
    PYTHONPATH=. python benchmarks/clapp_curve.py --config default --budgets 10000 40000  # the embedded default job

One run per seed, as long as the largest budget (a schedule's horizon is that run's length), each a run of
:func:`saccade_sim.sweep.run_sweep` in its own folder under ``--out`` (``--jobs N`` runs N at once; the same
command again reads finished runs back and resumes interrupted ones). The layers are probed during the run
(``probe.every_ms``, the ridge probe of the config's ``[probe]`` table, held-out test split) every G events, G
the budgets' greatest common divisor: at every budget, and at the multiples of G between uneven budgets. The
random twin is the same architecture with the run's initial weights; the input is the raw glimpses. Each
figure is the mean ± sd over seeds, and each gain is paired: trained - random of the same seed, with how many
seeds are above. The table is the sweep's learning curve (``--out``/curve.md, curve.csv).
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (arguments, curve_settings, label_curves, label_gain_table, machine, parse,  # noqa: E402
                    run_records, sweep_arguments, write_json)

from saccade_sim.sweep import run_sweep  # noqa: E402


def main() -> None:
    parser = arguments(__doc__, "clapp_curve")
    parser.add_argument("--config", default="configs/clapp.toml", help="a config file, or 'default' (the embedded job)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budgets", type=int, nargs="+", default=[2500, 5000, 10000, 20000])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--label-sizes", type=int, nargs="+", default=[],
                        help="also probe each finished run's final weights with these numbers of labelled training "
                             "images (trained and random twin; label_curve.json in the run folder)")
    sweep_arguments(parser, "clapp_curve")
    args = parse(parser)
    config = None if args.config == "default" else args.config
    step = math.gcd(*args.budgets)
    sweep = run_sweep(config, seeds=args.seeds, out=args.out, jobs=args.jobs, threads=args.threads,
                      overrides=[*args.set, *curve_settings(config, args.set, max(args.budgets), step)])
    probed = max(args.budgets) // step
    print(f"\nclapp_curve: {args.config} {' '.join(args.set)}; {sweep.count('done') + sweep.count('skipped')} of "
          f"{len(args.seeds)} seed(s) {args.seeds} finished; probed every {step} events ({probed} budgets for the "
          f"{len(set(args.budgets))} asked); {machine()['summary']}, {args.threads} thread(s) per run; runs in "
          f"{Path(args.out).resolve()}")
    print(sweep.curve_markdown())
    labels = label_curves(sweep, args.label_sizes) if args.label_sizes else []
    if labels:
        names = list(next(r.results for r in sweep.runs if r.results)["probe"]["layers"])
        print(f"\nat {max(args.budgets)} events, the probe trained on each number of labelled images (test split "
              f"unchanged)\n" + label_gain_table(labels, args.label_sizes, names))
    write_json(args.json, args, step=step, curve=sweep.curve, runs=run_records(sweep), labels=labels)


if __name__ == "__main__":
    main()
