"""Sweeps: every combination of a grid of settings, over several seeds, each run in its own folder.

    table = run_sweep("exp.toml", {"rule.name": ["oja", "instar"]}, seeds=range(5), out="runs/sweep", jobs=2)
    print(table.markdown())

``out/COMBINATION/seedN/`` is an ordinary run folder (``saccade-sim analyze`` works on it). Running the same
sweep again skips the finished runs (those with ``results.json``) and resumes the interrupted ones from their
checkpoints, so a sweep stopped by Ctrl-C, a crash or a cluster time limit continues where it was. Runs go
in-process (``jobs = 1``), in parallel local processes (``jobs > 1``, one torch thread each by default) or
through submitit (its local executor, or SLURM). The cross-run table (``table.csv``, ``table.md``; one line
per run in ``runs.csv``) gives per combination and representation the mean and sample standard deviation
over seeds of the probe's test accuracy, and each layer's paired gain over its random-weights twin (the same
seed's untrained layer): ``gain_s = trained_s - random_s``, mean, sd and how many seeds are above 0.
With in-run probes (``probe.every_ms``), the learning curve (``curve.csv``, ``curve.md``) gives the same per
budget (events): each layer's trained accuracy at that budget against the run's random twin and raw input.
"""
from __future__ import annotations

import copy
import csv
import io as text_io
import itertools
import json
import re
import signal
import statistics
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch

from . import io, runfolder
from .checkpoint import CHECKPOINT, CONFIG, RESULTS, load_checkpoint, restore, run_in_folder
from .config import parse_value, read_tree, resolve, set_key
from .errors import ConfigError, DivergenceError, Interrupted, SaccadeSimError
from .progress import bar as progress_bar

MANIFEST = "sweep.json"
EXECUTORS = ("local", "submitit-local", "slurm")
#: submitit's cluster-independent parameters; any other ``--slurm`` key is passed as ``slurm_KEY``
SUBMITIT_GENERIC = ("timeout_min", "mem_gb", "nodes", "cpus_per_task", "gpus_per_node", "tasks_per_node", "name")


# -- the command line's grid syntax ------------------------------------------------------------------
def split_values(text: str) -> list[str]:
    """Split ``v1,v2,...`` at the commas outside brackets, braces and quotes (``[1,2],[3]`` is two values)."""
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def parse_grid(items: Sequence[str], single: bool = False) -> list[tuple[str, Any]]:
    """``["rule.name=oja,instar", "rule.lr=0.01,0.1"]`` -> ``[("rule.name", ["oja", "instar"]), ...]``; each value
    a TOML literal or a bare string. With ``single``, ``key=value`` pairs whose value is not split."""
    out = []
    for item in items:
        key, eq, text = item.partition("=")
        if not eq or not key.strip() or not text.strip():
            raise ConfigError(f"--grid {item!r}: expected KEY=VALUE1,VALUE2,...")
        values = parse_value(text.strip()) if single else [parse_value(v) for v in split_values(text)]
        out.append((key.strip(), values))
    return out


def parse_seeds(text: str) -> list[int]:
    """``"0-4"`` -> [0, 1, 2, 3, 4]; ``"0,3,7"`` -> [0, 3, 7]; ``"2"`` -> [2]."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            lo, dash, hi = part.strip().partition("-")
            seeds += list(range(int(lo), int(hi) + 1)) if dash else [int(lo)]
    except ValueError:
        raise ConfigError(f"--seeds {text!r}: expected a range 0-4, a list 0,3,7 or one seed") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds {text!r}: expected distinct seeds, got {seeds}")
    return seeds


# -- the plan ------------------------------------------------------------------------------------------
def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"rule": {"name": "oja"}}`` -> ``{"rule.name": "oja"}`` (lists are values, not tables)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def combinations(grid: Sequence[tuple[str, Sequence[Any]]] | Mapping[str, Sequence[Any]] = (),
                 variants: Mapping[str, Mapping[str, Any]] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(label, dotted settings) of every variant x every point of the grid's product, in order."""
    grid = list(grid.items()) if isinstance(grid, Mapping) else list(grid)
    for key, values in grid:
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            raise ConfigError(f"sweep grid {key}: expected a list of values, got {values!r}")
    labelled = list((variants or {"": {}}).items())
    out = []
    for (name, settings), point in itertools.product(labelled, itertools.product(*[list(v) for _, v in grid])):
        values = {**flatten(settings), **dict(zip([k for k, _ in grid], point))}
        words = [name] if name else []
        words += [f"{k}={_show(v)}" for (k, _), v in zip(grid, point)]
        out.append((", ".join(words) or "base", values))
    return out


def folder_name(label: str) -> str:
    """A file-system-safe folder name for a combination label."""
    name = re.sub(r"[^A-Za-z0-9._=+-]+", "_", label.replace(", ", ",")).strip("_")
    return name[:120] or "base"


@dataclass
class SweepRun:
    """One run of a sweep: its combination, seed and folder, and what became of it."""

    label: str
    values: dict[str, Any]
    seed: int
    folder: Path
    tree: dict[str, Any] = field(repr=False, default_factory=dict)  #: the resolved config (config.json)
    #: "skipped" (finished before), "done", "diverged", "failed" (another error), "interrupted" (checkpointed),
    #: "pending" (not started)
    status: str = "pending"
    error: str = ""
    results: dict[str, Any] | None = field(repr=False, default=None)
    #: a finished run's accuracy per layer at each probed budget, {events: {layer: accuracy}}: at 0 its initial
    #: weights (the final probe's random twins), then the in-run probes (``probe.every_ms``) and the final probe
    #: (at ``run.events``, which it overrides); empty without a final probe
    curve: dict[int, dict[str, float]] = field(repr=False, default_factory=dict)

    def finish(self, results: dict[str, Any], status: str) -> None:
        """Record the finished run's results and read its in-run probes from its folder."""
        self.results, self.status = results, status
        probe = results.get("probe")
        if not probe:
            return
        path = self.folder / runfolder.DECODING
        points = [{"event": 0, **probe["baselines"]["random"]},
                  *(json.loads(path.read_text()) if path.exists() else []),
                  {"event": results["events"], **probe["layers"]}]
        self.curve = {p["event"]: {k: v for k, v in p.items() if k not in ("event", "time_ms")}
                      for p in sorted(points, key=lambda p: p["event"])}


def base_tree(config: str | Path | Mapping[str, Any] | None, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The raw tree every run starts from: a TOML / JSON file, a dict, or the defaults; ``--set`` applied."""
    from .config import apply_override

    tree = copy.deepcopy(dict(config)) if isinstance(config, Mapping) else read_tree(config) if config else {}
    for assignment in overrides:
        apply_override(tree, assignment)
    return tree


def plan(base: Mapping[str, Any], combos: Sequence[tuple[str, dict[str, Any]]], seeds: Sequence[int],
         out: Path) -> list[SweepRun]:
    """Every (combination, seed) as a :class:`SweepRun`, its config resolved (a bad value is a ConfigError
    naming the combination before anything runs)."""
    runs = []
    names: dict[str, str] = {}
    for label, values in combos:
        name = folder_name(label)
        if names.setdefault(name, label) != label:
            raise ConfigError(f"sweep: combinations {names[name]!r} and {label!r} map to one folder {name!r}")
        for seed in seeds:
            tree = copy.deepcopy(dict(base))
            for key, value in values.items():
                set_key(tree, key, copy.deepcopy(value), where="sweep")
            tree["seed"] = seed
            set_key(tree, "run.progress", False, where="sweep")
            try:
                cfg = resolve(tree)
            except ConfigError as exc:
                raise ConfigError(f"sweep combination {label!r}, seed {seed}: {exc}") from None
            resolved = cfg.to_dict()
            resolved["eye"]["shards"] = cfg.eye.shard_count()  # as the run saves it: one process, "auto" = 1 shard
            runs.append(SweepRun(label, values, seed, out / name / f"seed{seed}", resolved))
    return runs


def _finished(run: SweepRun) -> bool:
    """True when ``run.folder`` holds this very run, finished; a finished run of another config is refused."""
    if not (run.folder / RESULTS).exists():
        return False
    saved = json.loads((run.folder / CONFIG).read_text()) if (run.folder / CONFIG).exists() else {}
    differ = sorted(k for k in set(flatten(saved)) | set(flatten(run.tree))
                    if flatten(saved).get(k) != flatten(run.tree).get(k))
    if differ:
        raise ConfigError(f"{run.folder}: holds a finished run of another configuration ({differ[0]} differs); "
                          "choose another sweep folder (--out) or delete that run")
    return True


# -- one run (in this process, a worker process or a cluster job) -------------------------------------
def run_one(folder: str, tree: dict[str, Any], threads: int = 1) -> dict[str, Any]:
    """Run (or resume from its checkpoint) the experiment ``tree`` in ``folder`` with ``threads`` torch threads;
    returns its results. A picklable, module-level function: what worker processes and submitit jobs call."""
    from .experiment import Experiment

    torch.set_num_threads(threads)
    out = Path(folder)
    runfolder.create(out)
    with runfolder.lock(out):  # one writer per run folder, as for `saccade-sim run`
        same = (out / CONFIG).exists() and json.loads((out / CONFIG).read_text()) == tree
        if same and (out / CHECKPOINT).exists():
            state, cfg = load_checkpoint(out)
            exp = restore(out, state, cfg)
        else:
            exp = Experiment(resolve(tree))
            runfolder.prepare(out, overwrite=True)
        return run_in_folder(exp, out)


def _ignore_sigint(threads: int) -> None:
    """Worker initialiser: Ctrl-C reaches a worker only while it runs (then it checkpoints and stops)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(threads)


class _Local:
    """``jobs`` runs at once in spawned worker processes (``jobs == 1``: in this process)."""

    def __init__(self, jobs: int, threads: int, folder: Path, slurm: Mapping[str, Any]) -> None:
        self.jobs, self.threads = jobs, threads
        self.pool = None if jobs == 1 else ProcessPoolExecutor(jobs, get_context("spawn"), _ignore_sigint, (threads,))

    def submit(self, run: SweepRun) -> Future:
        if self.pool is not None:
            return self.pool.submit(run_one, str(run.folder), run.tree, self.threads)
        done: Future = Future()
        try:
            done.set_result(run_one(str(run.folder), run.tree, self.threads))
        except SaccadeSimError as exc:
            done.set_exception(exc)
        return done

    def close(self, cancel: bool) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=cancel)


class _Submitit:
    """Runs as submitit jobs (its local executor, or SLURM), at most ``jobs`` queued or running at once."""

    def __init__(self, jobs: int, threads: int, folder: Path, slurm: Mapping[str, Any], cluster: str) -> None:
        try:
            import submitit
        except ImportError:
            raise ConfigError("--executor slurm / submitit-local: needs submitit "
                              "(pip install 'saccade-sim[cluster]')") from None
        self.executor = submitit.AutoExecutor(folder=folder / "submitit", cluster=cluster)
        params = {"cpus_per_task": threads, "timeout_min": 24 * 60, "name": "saccade-sim"}
        for key, value in slurm.items():
            params[key if key in SUBMITIT_GENERIC else f"slurm_{key}"] = value
        try:
            self.executor.update_parameters(**params)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"--slurm: {exc}") from None
        self.jobs, self.threads = jobs, threads

    def submit(self, run: SweepRun) -> Future:
        job = self.executor.submit(run_one, str(run.folder), run.tree, self.threads)
        future: Future = Future()
        future.job = job  # type: ignore[attr-defined]
        return future

    def poll(self, futures: Iterable[Future]) -> None:
        """Move finished jobs' results (or errors) into their futures."""
        for future in futures:
            job = future.job  # type: ignore[attr-defined]
            if not future.done() and job.done():
                try:
                    future.set_result(job.result())
                except Exception as exc:  # submitit wraps the job's exception with its traceback
                    lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
                    future.set_exception(SaccadeSimError(lines[-1] if lines else type(exc).__name__))

    def close(self, cancel: bool) -> None:
        return None


def _execute(runs: list[SweepRun], make: Callable[[], Any], progress: bool,
             report: Callable[[SweepRun], None]) -> None:
    """Run ``runs`` with the executor ``make()`` builds, at most ``executor.jobs`` at once."""
    if not runs:
        return
    executor = make()
    pending, active = list(runs), {}
    interrupted = False
    with progress_bar(len(runs), "sweep", progress, unit="run") as bar:
        try:
            while pending or active:
                while pending and len(active) < executor.jobs:
                    run = pending.pop(0)
                    active[executor.submit(run)] = run
                if hasattr(executor, "poll"):
                    executor.poll(active)
                    finished = [f for f in active if f.done()]
                    if not finished:
                        time.sleep(0.5)
                        continue
                else:
                    finished = list(wait(active, return_when=FIRST_COMPLETED).done)
                for future in finished:
                    run = active.pop(future)
                    _collect(run, future)
                    interrupted |= run.status == "interrupted"
                    report(run)
                    bar.update()
                if interrupted:
                    break
        except KeyboardInterrupt:
            interrupted = True
        finally:
            executor.close(cancel=True)
        for future, run in active.items():  # stopped together: each wrote its checkpoint
            if future.done():
                _collect(run, future)
                report(run)
    if interrupted:
        done = sum(r.status in ("done", "skipped") for r in runs)
        raise Interrupted(f"sweep stopped with {done} of {len(runs)} runs finished; the same command continues it")


def _collect(run: SweepRun, future: Future) -> None:
    try:
        run.finish(future.result(), "done")
    except Interrupted:
        run.status = "interrupted"
    except DivergenceError as exc:
        run.status, run.error = "diverged", str(exc)
    except SaccadeSimError as exc:
        run.status, run.error = "failed", str(exc)


# -- the table -----------------------------------------------------------------------------------------
def _stats(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _paired(trained: Sequence[float], random: Sequence[float]) -> dict[str, Any]:
    """Trained and random-twin accuracies of the same seeds: each one's mean and sd, and the paired gain's
    mean, sd and how many seeds are above 0."""
    gains = [t - b for t, b in zip(trained, random)]
    (tm, tsd), (rm, rsd), (gm, gsd) = _stats(trained), _stats(random), _stats(gains)
    return {"accuracy_mean": tm, "accuracy_sd": tsd, "random_mean": rm, "random_sd": rsd, "gain_mean": gm,
            "gain_sd": gsd, "gain_above": sum(g > 0 for g in gains)}


def mean_sd_text(mean: float, sd: float, n: int, sign: str = "") -> str:
    """'mean ± sd' over ``n`` seeds (the mean alone for one)."""
    return f"{mean:{sign}.3f} ± {sd:.3f}" if n > 1 else f"{mean:{sign}.3f}"


def gain_text(row: Mapping[str, Any], n: int) -> str:
    """A row's paired gain over ``n`` seeds: 'mean ± sd (k/n above)'."""
    return f"{mean_sd_text(row['gain_mean'], row['gain_sd'], n, '+')} ({row['gain_above']}/{n} above)"


@dataclass
class SweepTable:
    """The runs of a sweep and their cross-run tables: :attr:`rows` (one per combination and representation,
    at the end of the runs) and :attr:`curve` (one per combination, budget and representation)."""

    keys: list[str]  #: the settings that vary between combinations (the grid's keys and the variants' keys)
    runs: list[SweepRun]
    rows: list[dict[str, Any]] = field(default_factory=list)
    #: the learning curve: per combination, ``events`` 0 (the raw input, and each layer's initial weights: its
    #: random twin) and then every probed budget (the in-run probes and the final probe), each layer's trained
    #: accuracy against the same seeds' random twins
    curve: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.rows:
            self.rows = self._summarise()
        if not self.curve:
            self.curve = self._summarise_curve()

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.runs)

    def _summarise(self) -> list[dict[str, Any]]:
        rows = []
        for label in dict.fromkeys(r.label for r in self.runs):
            group = [r for r in self.runs if r.label == label]
            ok = [r.results for r in group if r.results and r.results.get("probe")]
            head = {"combination": label, **{k: group[0].values.get(k, "") for k in self.keys},
                    "seeds": len(ok), "failed": sum(r.status in ("failed", "diverged") for r in group)}
            if not ok:
                rows.append({**head, "representation": "", "error": next((r.error for r in group if r.error), "")})
                continue
            wall = _stats([r["wall_s"] for r in ok])[0]
            chance = ok[0]["probe"]["chance"]
            mean, sd = _stats([r["probe"]["baselines"]["input"] for r in ok])
            rows.append({**head, "representation": "input", "accuracy_mean": mean, "accuracy_sd": sd,
                         "chance": chance, "wall_s_mean": wall})
            for layer in ok[0]["probe"]["layers"]:
                rows.append({**head, "representation": layer,
                             **_paired([r["probe"]["layers"][layer] for r in ok],
                                       [r["probe"]["baselines"]["random"][layer] for r in ok]),
                             "chance": chance, "wall_s_mean": wall})
        return rows

    def _summarise_curve(self) -> list[dict[str, Any]]:
        rows = []
        for label in dict.fromkeys(r.label for r in self.runs):
            ok = [r for r in self.runs if r.label == label and r.curve]
            if not ok:
                continue
            head = {"combination": label, **{k: ok[0].values.get(k, "") for k in self.keys}}
            probes = [r.results["probe"] for r in ok]
            chance = probes[0]["chance"]
            mean, sd = _stats([p["baselines"]["input"] for p in probes])
            rows.append({**head, "events": 0, "representation": "input", "seeds": len(ok), "accuracy_mean": mean,
                         "accuracy_sd": sd, "chance": chance})
            for events in sorted({e for r in ok for e in r.curve}):
                seeds = [r for r in ok if events in r.curve]
                for layer in probes[0]["layers"]:
                    rows.append({**head, "events": events, "representation": layer, "seeds": len(seeds),
                                 **_paired([r.curve[events][layer] for r in seeds],
                                           [r.results["probe"]["baselines"]["random"][layer] for r in seeds]),
                                 "chance": chance})
        return rows

    def row(self, combination: str, representation: str, events: int | None = None) -> dict[str, Any]:
        """The summary row of one combination's representation ("input", "layer1", ...); with ``events``, its
        row of the learning curve at that budget."""
        for r in self.rows if events is None else self.curve:
            if r["combination"] == combination and r["representation"] == representation and (
                    events is None or r["events"] == events):
                return r
        where = "" if events is None else f" at {events} events"
        raise KeyError(f"no row {combination!r} / {representation!r}{where}")

    COLUMNS = ("combination", "representation", "seeds", "failed", "accuracy_mean", "accuracy_sd", "random_mean",
               "random_sd", "gain_mean", "gain_sd", "gain_above", "chance", "wall_s_mean", "error")
    CURVE_COLUMNS = ("combination", "events", "representation", "seeds", "accuracy_mean", "accuracy_sd",
                     "random_mean", "random_sd", "gain_mean", "gain_sd", "gain_above", "chance")

    def _csv(self, rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
        buf = text_io.StringIO()
        writer = csv.DictWriter(buf, ["combination", *self.keys, *columns[1:]], extrasaction="ignore",
                                lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: _show(v) if k in self.keys else v for k, v in r.items()})
        return buf.getvalue()

    def csv(self) -> str:
        """:attr:`rows` as CSV: the combination, its settings, then :data:`COLUMNS` (empty where not defined)."""
        return self._csv(self.rows, self.COLUMNS)

    def curve_csv(self) -> str:
        """:attr:`curve` as CSV: the combination, its settings, then :data:`CURVE_COLUMNS`."""
        return self._csv(self.curve, self.CURVE_COLUMNS)

    def runs_csv(self) -> str:
        """One line per run: settings, seed, status, folder, every probe accuracy, timings and any error."""
        layers = list(dict.fromkeys(k for r in self.runs if r.results for k in r.results["probe"].get("layers", {})))
        columns = ["combination", *self.keys, "seed", "status", "folder", "input",
                   *[f"{n}{s}" for n in layers for s in ("", "_random")], "wall_s", "glimpses_per_s", "error"]
        buf = text_io.StringIO()
        writer = csv.DictWriter(buf, columns, lineterminator="\n")
        writer.writeheader()
        for r in self.runs:
            line = {"combination": r.label, **{k: _show(r.values.get(k, "")) for k in self.keys}, "seed": r.seed,
                    "status": r.status, "folder": str(r.folder), "error": r.error}
            probe = (r.results or {}).get("probe") or {}
            if probe:
                line["input"] = probe["baselines"]["input"]
                for n in layers:
                    line[n], line[f"{n}_random"] = probe["layers"].get(n), probe["baselines"]["random"].get(n)
                line.update(wall_s=r.results["wall_s"], glimpses_per_s=r.results["glimpses_per_s"])
            writer.writerow(line)
        return buf.getvalue()

    def markdown(self) -> str:
        """One line per combination: raw-input accuracy, then per layer the trained accuracy (its random twin)
        and the paired gain, each mean ± sd over seeds."""
        layers = list(dict.fromkeys(r["representation"] for r in self.rows if r["representation"] not in ("", "input")))
        head = ["combination", "seeds", "input", *[c for n in layers for c in (f"{n} (random)", f"{n} - random")],
                "s/run"]
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
        for label in dict.fromkeys(r["combination"] for r in self.rows):
            rows = {r["representation"]: r for r in self.rows if r["combination"] == label}
            first = next(iter(rows.values()))
            n = first["seeds"]
            seeds = f"{n}" + (f" ({first['failed']} failed)" if first["failed"] else "")
            if "input" not in rows:
                lines.append(f"| {label} | {seeds} | failed: {first.get('error', '')[:80]} |")
                continue
            cells = [label, seeds, mean_sd_text(rows["input"]["accuracy_mean"], rows["input"]["accuracy_sd"], n)]
            for layer in layers:
                r = rows.get(layer)
                if r is None:
                    cells += ["", ""]
                    continue
                cells.append(f"{mean_sd_text(r['accuracy_mean'], r['accuracy_sd'], n)} "
                             f"({mean_sd_text(r['random_mean'], r['random_sd'], n)})")
                cells.append(gain_text(r, n))
            wall = rows["input"]["wall_s_mean"]
            cells.append(f"{wall:.0f}" if wall >= 10 else f"{wall:.1f}")
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def curve_markdown(self) -> str:
        """The learning curve, one line per combination, budget and representation: the trained accuracy, the
        random twin and the paired gain, each mean ± sd over seeds (at 0 events the layers are their twins)."""
        head = ["combination", "events", "representation", "seeds", "trained", "random twin", "trained - random"]
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
        for r in self.curve:
            n = r["seeds"]
            cells = [r["combination"], str(r["events"]), r["representation"], str(n),
                     mean_sd_text(r["accuracy_mean"], r["accuracy_sd"], n)]
            if "random_mean" in r:
                cells += [mean_sd_text(r["random_mean"], r["random_sd"], n),
                          gain_text(r, n)]
            else:
                cells += ["", ""]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def write(self, out: str | Path) -> None:
        """``table.csv``, ``table.md``, ``runs.csv``, ``curve.csv`` and ``curve.md`` into ``out`` (atomically)."""
        out = Path(out)
        for name, text in (("table.csv", self.csv()), ("table.md", self.markdown() + "\n"),
                           ("runs.csv", self.runs_csv()), ("curve.csv", self.curve_csv()),
                           ("curve.md", self.curve_markdown() + "\n")):
            io.atomic_write(out / name, lambda p, t=text: p.write_text(t))


def load_sweep(out: str | Path) -> SweepTable:
    """The table of the sweep in ``out`` from its manifest and the run folders (finished runs only)."""
    out = Path(out)
    if not (out / MANIFEST).exists():
        raise ConfigError(f"{out}: no {MANIFEST} here; not a sweep folder")
    manifest = json.loads((out / MANIFEST).read_text())
    runs = []
    for entry in manifest["runs"]:
        run = SweepRun(entry["label"], entry["values"], entry["seed"], out / entry["folder"])
        if (run.folder / RESULTS).exists():
            run.finish(json.loads((run.folder / RESULTS).read_text()), "skipped")
        runs.append(run)
    return SweepTable(manifest["keys"], runs)


def run_sweep(config: str | Path | Mapping[str, Any] | None = None,
              grid: Sequence[tuple[str, Sequence[Any]]] | Mapping[str, Sequence[Any]] = (),
              seeds: Iterable[int] = (0,), out: str | Path = "runs/sweep", *,
              variants: Mapping[str, Mapping[str, Any]] | None = None, overrides: Sequence[str] = (),
              jobs: int = 1, threads: int = 1, executor: str = "local", slurm: Mapping[str, Any] | None = None,
              progress: bool = True, echo: Callable[[str], None] = print) -> SweepTable:
    """Run every combination of ``variants`` (label -> settings) x ``grid`` (dotted key -> values) for every
    seed, each in ``out/COMBINATION/seedN`` (finished runs are skipped, interrupted ones resumed), and write
    ``sweep.json``, ``table.csv``, ``table.md``, ``runs.csv``, ``curve.csv`` and ``curve.md`` into ``out``.
    ``config`` is a TOML / JSON file, a dict or None (the defaults); ``overrides`` are ``key=value`` strings
    applied to it. A run that fails (e.g. diverges) is reported and the sweep goes on; Ctrl-C stops every run
    at a checkpoint and raises :class:`~saccade_sim.errors.Interrupted`. Returns the table."""
    if executor not in EXECUTORS:
        raise ConfigError(f"sweep executor: unknown value {executor!r}; valid choices: {', '.join(EXECUTORS)}")
    if jobs < 1 or threads < 1:
        raise ConfigError(f"sweep: --jobs and --threads must be >= 1, got {jobs} and {threads}")
    out, seeds = Path(out).absolute(), list(seeds)
    combos = combinations(grid, variants)
    runs = plan(base_tree(config, overrides), combos, seeds, out)
    keys = list(dict.fromkeys(k for _, values in combos for k in values))
    out.mkdir(parents=True, exist_ok=True)
    io.write_json(out / MANIFEST, {"keys": keys, "seeds": seeds, "runs": [
        {"label": r.label, "values": r.values, "seed": r.seed, "folder": str(r.folder.relative_to(out))}
        for r in runs]})
    todo = []
    for run in runs:
        if _finished(run):
            run.finish(json.loads((run.folder / RESULTS).read_text()), "skipped")
        else:
            todo.append(run)

    def report(run: SweepRun) -> None:
        if run.status == "done":
            probe = run.results.get("probe") or {}
            accs = ", ".join(f"{n} {a:.3f} (random {probe['baselines']['random'][n]:.3f})"
                             for n, a in probe.get("layers", {}).items())
            echo(f"done {run.label} seed {run.seed}: {accs or 'no probe'}; {run.results['wall_s']:.0f} s")
        elif run.error:
            echo(f"{run.status} {run.label} seed {run.seed}: {run.error}")

    def make() -> Any:
        if executor == "local":
            return _Local(jobs, threads, out, slurm or {})
        return _Submitit(jobs, threads, out, slurm or {}, "local" if executor == "submitit-local" else "slurm")

    try:
        _execute(todo, make, progress, report)
    finally:
        table = SweepTable(keys, runs)
        table.write(out)
    return table
