"""Shared helpers of the benchmark scripts: the data folder, the common options, repeated interleaved
measurements and their summary, a text table, the JSON record."""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from saccade_sim.sweep import gain_text, mean_sd_text

DATA = Path(os.environ.get("SACCADE_SIM_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def arguments(doc: str, name: str, threads: bool = True) -> argparse.ArgumentParser:
    """A parser described by the first line of the script's docstring, with ``--json`` (default
    ``benchmarks/results/NAME.json``) and, unless ``threads`` is False, ``--threads`` (applied by ``parse``)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    if threads:
        parser.add_argument("--threads", type=int, default=1,
                            help="torch threads (1 is fastest on a shared 2-core machine: 2 threads oversubscribe)")
    parser.add_argument("--json", default=f"benchmarks/results/{name}.json")
    return parser


def parse(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse the command line and set torch's thread count to ``--threads`` where the parser has it."""
    args = parser.parse_args()
    if "threads" in args:
        torch.set_num_threads(args.threads)
    return args


def summary(values: Sequence[float]) -> dict[str, Any]:
    """Median, mean, sample standard deviation (0 for one value), min, max, and the half inter-quartile range
    relative to the median."""
    v = sorted(values)
    q = statistics.quantiles(v, n=4) if len(v) > 1 else [v[0]] * 3
    med = statistics.median(v)
    return {"median": med, "mean": statistics.fmean(v), "sd": statistics.stdev(v) if len(v) > 1 else 0.0,
            "min": v[0], "max": v[-1], "rel_spread": (q[2] - q[0]) / 2 / med if med else 0.0,
            "n": len(v), "values": list(values)}


def mean_sd(values: Sequence[float]) -> str:
    """'mean ± sd' of ``values`` with 3 decimals."""
    s = summary(values)
    return f"{s['mean']:.3f} ± {s['sd']:.3f}"


def mean_se(values: Sequence[float]) -> str:
    """'+mean ± standard error' (sd / sqrt(n)) of paired differences, with 3 decimals."""
    s = summary(values)
    return f"{s['mean']:+.3f} ± {s['sd'] / len(values) ** 0.5:.3f}"


def mean_std(values: Sequence[float], sign: str = "") -> str:
    """'mean ± sd' of ``values`` (the value alone for one); ``sign = "+"`` prints the mean's sign."""
    s = summary(values)
    return mean_sd_text(s["mean"], s["sd"], s["n"], sign)


def row_text(row: dict[str, Any], what: str) -> str:
    """'mean ± sd' of ``what`` ("accuracy", "random", "gain") in a row of a sweep's table, as the sweep's own
    tables print it (the mean alone for one seed); a gain signed, with '(k/n above)'."""
    if what == "gain":
        return gain_text(row, row["seeds"])
    return mean_sd_text(row[f"{what}_mean"], row[f"{what}_sd"], row["seeds"])


def sweep_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    """``--jobs`` and ``--out`` of a benchmark whose runs are a sweep (:func:`saccade_sim.sweep.run_sweep`)."""
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (local processes, --threads torch threads "
                                                            "each)")
    parser.add_argument("--out", default=f"benchmarks/results/{name}_runs",
                        help="the sweep folder: one run folder per run; finished runs are read back, not rerun")


def curve_settings(config: str | Path | None, overrides: Sequence[str], events: int, every: int) -> list[str]:
    """The overrides that make a run of ``config`` a learning curve: ``events`` events, the layers probed
    during the run every ``every`` events (``probe.every_ms``, from the config's ``eye.fixation_ms``)."""
    from saccade_sim.config import load

    fixation_ms = load(config, list(overrides)).eye.fixation_ms
    return [f"run.events={events}", f"probe.every_ms={every * fixation_ms}"]


def run_records(sweep: Any) -> list[dict[str, Any]]:
    """The JSON record of each run of a sweep's table: seed, status, folder, any error, its results.json tree,
    its resolved config and its learning curve (each layer's accuracy at 0 events, its random twin, and at
    every probed budget)."""
    return [{"seed": r.seed, "status": r.status, "folder": str(r.folder), "error": r.error, "results": r.results,
             "config": r.tree, "curve": [{"events": e, **layers} for e, layers in r.curve.items()]}
            for r in sweep.runs]


def label_curves(sweep: Any, sizes: Sequence[int]) -> list[dict[str, Any]]:
    """Per finished run: {"seed", "trained": {n: [acc per layer]}, "random": ...}, read from the run folder's
    label_curve.json when it holds these sizes, else computed (the run rebuilt from its folder) and written."""
    from saccade_sim.analysis.report import load_run  # matplotlib and the analyses: only for the scripts that ask

    curves = []
    for run in sweep.runs:
        if not run.results:
            continue
        path = run.folder / "label_curve.json"
        saved = json.loads(path.read_text()) if path.exists() else {}
        if saved.get("sizes") != list(sizes):
            exp = load_run(run.folder)
            saved = {"sizes": list(sizes),
                     **{k: {str(n): acc for n, acc in exp.label_curve(layers, list(sizes)).items()}
                        for k, layers in (("trained", exp.layers), ("random", exp.initial_layers))}}
            path.write_text(json.dumps(saved))
        curves.append({"seed": run.seed, **saved})
    return curves


def label_gain_table(curves: list[dict[str, Any]], sizes: Sequence[int], names: Sequence[str]) -> str:
    """Per number of labels and layer (``names``): trained and random-weights accuracy (mean ± sd over the runs of
    :func:`label_curves`) and the paired gain trained - random with how many runs are above."""
    rows = []
    for n in sizes:
        for i, name in enumerate(names):
            trained = [c["trained"][str(n)][i] for c in curves]
            random = [c["random"][str(n)][i] for c in curves]
            gains = [t - r for t, r in zip(trained, random)]
            rows.append({"labels": n, "layer": name, "trained": mean_std(trained), "random weights": mean_std(random),
                         "trained - random (paired)": f"{mean_std(gains, '+')} ({sum(g > 0 for g in gains)}/"
                                                      f"{len(gains)} above)"})
    return table(rows, ["labels", "layer", "trained", "random weights", "trained - random (paired)"], style="markdown")


def interleaved(cases: dict[str, Callable[[], float]], repeats: int) -> dict[str, dict[str, Any]]:
    """Run every case once per round, ``repeats`` rounds (so the compared things share the machine's load),
    and summarise each case's values."""
    values: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            values[name].append(fn())
    return {name: summary(v) for name, v in values.items()}


def timed(fn: Callable[[], Any]) -> float:
    """Wall seconds of ``fn()``, the CUDA device (if in use) synchronised before and after."""
    cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start


def max_difference(a: Sequence[torch.nn.Module], b: Sequence[torch.nn.Module]) -> float:
    """max |x_a - x_b| over every parameter and buffer of the paired modules (inf where names or shapes differ)."""
    worst = 0.0
    for ma, mb in zip(a, b, strict=True):
        sa, sb = ma.state_dict(), mb.state_dict()
        if sa.keys() != sb.keys():
            return float("inf")
        for k, x in sa.items():
            if not isinstance(x, torch.Tensor) or x.numel() == 0:
                continue
            if x.shape != sb[k].shape:
                return float("inf")
            worst = max(worst, float((x.double() - sb[k].double()).abs().max()))
    return worst


def agent_modules(exp: Any) -> list[torch.nn.Module]:
    """Every layer and rule module of an Experiment's agents (what a comparison checks)."""
    return [m for agent in exp.agents for m in (agent.layer, agent.rule)]


def require(ok: bool, message: str) -> None:
    """Exit with status 1 and ``message`` unless ``ok``: two sides that no longer compute the same thing are not
    a comparison, and their timings are not reported."""
    if not ok:
        sys.exit(f"comparison drifted: {message}")


def table(rows: list[dict[str, Any]], columns: Sequence[str], style: str = "right") -> str:
    """A text table of ``rows`` (floats with 3 significant digits, a missing cell empty) in one of three
    layouts: ``right`` (plain, right-aligned), ``left`` (plain, left-aligned) or ``markdown`` (left-aligned)."""
    def fmt(x: Any) -> str:
        if isinstance(x, float):
            return f"{x:.0f}" if abs(x) >= 100 else f"{x:.3g}"
        return str(x)

    cells = [list(columns)] + [[fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    if style == "markdown":
        lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in cells]
        lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    else:
        justify = str.rjust if style == "right" else str.ljust
        lines = ["  ".join(justify(c, w) for c, w in zip(row, widths)).rstrip() for row in cells]
        lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """The machine and the time of the run; ``summary`` reads e.g. '2-core x86_64 CPU, no GPU'."""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"summary": f"{os.cpu_count()}-core {platform.machine()} CPU, {gpu or 'no GPU'}",
            "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "torch": torch.__version__, "threads": torch.get_num_threads(), "cuda": gpu,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def write_json(path: str | Path, args: argparse.Namespace, **results: Any) -> None:
    """Write the machine, the script's arguments and the results as JSON."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps({"machine": machine(), "args": vars(args), **results}, indent=2, default=str))
    print(f"wrote {path}")
