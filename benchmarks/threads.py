"""Torch threads: simulation and probe speed of the default experiment with 1, 2, ... threads, on an idle
machine and beside busy processes (the measurement behind the default of ``run.threads``).

    PYTHONPATH=. python benchmarks/threads.py [--threads 1 2] [--busy 0 1] [--events 300] [--repeats 3] [--no-probe]

The experiment is the CLI's default (natural photographs, preset small, CLAPP, 16 eyes), built once per
thread count. Each round runs every (threads, busy) case once, so the cases share the machine's load:
``--busy N`` starts N extra processes that spin a CPU core each for that case only. ``sim glimpses/s`` is
``--events`` glimpse events through the engine (median of the rounds, with min and max); ``probe s`` is
one final probe (the default probe sizes) per case, in the last round.
"""
from __future__ import annotations

import subprocess
import sys
import time
from contextlib import contextmanager
from typing import Iterator

import torch

from common import arguments, summary, table, write_json
from saccade_sim.experiment import Experiment


@contextmanager
def busy(n: int) -> Iterator[None]:
    """``n`` processes spinning one core each while inside."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    time.sleep(0.5 if n else 0.0)
    try:
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


def measure(exp: Experiment, threads: int, events: int, probe: bool) -> tuple[float, float]:
    torch.set_num_threads(threads)
    start = time.perf_counter()
    exp.simulate(events, progress=False)
    sim = events * exp.config.eye.batch / (time.perf_counter() - start)
    start = time.perf_counter()
    if probe:
        exp.probe()
    return sim, time.perf_counter() - start


def main() -> None:
    parser = arguments(__doc__, "threads", threads=False)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--busy", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-probe", action="store_true", help="time the simulation only")
    args = parser.parse_args()
    cases = [(t, b) for b in args.busy for t in args.threads]
    exps = {t: Experiment({"run": {"progress": False, "events": 10**9}}) for t in args.threads}
    for t, exp in exps.items():  # warm-up: first kernels, first probe allocations
        measure(exp, t, 5, probe=False)
    values: dict[tuple[int, int], list[tuple[float, float]]] = {c: [] for c in cases}
    for round_ in range(args.repeats):
        probe = round_ == args.repeats - 1 and not args.no_probe
        for t, b in cases:
            with busy(b):
                values[(t, b)].append(measure(exps[t], t, args.events, probe))
    rows = []
    for (t, b), v in values.items():
        sim = summary([x[0] for x in v])
        rows.append({"threads": t, "busy processes": b, "sim glimpses/s": sim["median"],
                     "sim min": sim["min"], "sim max": sim["max"], "probe s": "" if args.no_probe else v[-1][1]})
    print(table(rows, list(rows[0])))
    write_json(args.json, args, rows=rows)


if __name__ == "__main__":
    main()
