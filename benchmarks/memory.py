"""Peak memory of the default job (``saccade-sim run`` with no configuration), phase by phase.

    PYTHONPATH=. python benchmarks/memory.py [--events 300] [--set KEY=VALUE ...]

Runs the CLI's job in this process (build, simulate, probe, save into a temporary folder) with the named
phases wrapped: each phase's peak resident memory is read from ``VmHWM`` in ``/proc/self/status``, the peak
being reset (``/proc/self/clear_refs``) as the phase starts, so nested phases (the probe's feature pass and
ridge fits inside the probe) report their own peaks and still count in their parent's. Resident memory is what
the machine must have; it includes what the allocator keeps after a free, and the touched pages of torch's
libraries (file-backed, shared between processes: "file after", against the anonymous memory "anon after").
"tensors after" is what the job itself still holds as the phase ends: the storages of every live tensor and
numpy array (each counted once), so the rest of "anon after" is the interpreter, torch's own state and freed
memory the allocator has kept. Memory does not grow with the
run's length (benchmarks/scaling.py), so a short run (``--events``) has the full run's peak. Linux only.
"""
from __future__ import annotations

import argparse
import functools
import gc
import importlib
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common import arguments, parse, table, write_json

#: (module or class path, attribute): the phases of the default job, outermost first
PHASES = [
    ("saccade_sim.experiment.Experiment", "__init__"),
    ("saccade_sim.datasets", "load"),
    ("saccade_sim.modalities.image.ImageModality", "prepare"),
    ("saccade_sim.build", "calibrate"),
    ("saccade_sim.experiment.Experiment", "simulate"),
    ("saccade_sim.experiment.Experiment", "probe"),
    ("saccade_sim.experiment.Experiment", "probe_scores"),
    ("saccade_sim.evaluation", "grid_features"),
    ("saccade_sim.evaluation", "ridge_probe"),
    ("saccade_sim.experiment.Experiment", "save"),
]


def status_mb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {key} in /proc/self/status")


def live_tensor_mb() -> float:
    """MB held by the storages of every live tensor and base numpy array, each storage counted once."""
    storages: dict[int, int] = {}
    with warnings.catch_warnings():  # isinstance on deprecated torch aliases warns
        warnings.simplefilter("ignore")
        objects = gc.get_objects()
        tensors = [o for o in objects if isinstance(o, (torch.Tensor, np.ndarray))]
    del objects
    for obj in tensors:
        if isinstance(obj, torch.Tensor) and obj.layout == torch.strided and not obj.is_meta:
            storage = obj.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
        elif isinstance(obj, np.ndarray) and obj.base is None:
            storages[obj.ctypes.data] = obj.nbytes
    return sum(storages.values()) / 2**20


def reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


class Tracer:
    """Wraps functions so that each call's peak resident memory is recorded under the function's name."""

    def __init__(self) -> None:
        self.open: list[list[float]] = []  # running peaks of the phases now open
        self.peaks: dict[str, dict[str, Any]] = {}

    def _enter(self) -> None:
        hwm = status_mb("VmHWM")
        for running in self.open:
            running[0] = max(running[0], hwm)
        reset_peak()
        self.open.append([status_mb("VmHWM")])

    def _exit(self, name: str) -> None:
        peak = max(self.open.pop()[0], status_mb("VmHWM"))
        for running in self.open:
            running[0] = max(running[0], peak)
        entry = self.peaks.setdefault(name, {"phase": name, "calls": 0, "peak MB": 0.0})
        entry["calls"] += 1
        entry["peak MB"] = max(entry["peak MB"], peak)
        entry["RSS after MB"] = status_mb("VmRSS")
        entry["anon after MB"] = status_mb("RssAnon")
        entry["file after MB"] = status_mb("RssFile")
        entry["tensors after MB"] = round(live_tensor_mb(), 1)
        reset_peak()  # the inventory's own list counts in no phase: the open phases' peaks are folded in above

    def wrap(self, owner: Any, attr: str, name: str) -> None:
        if isinstance(owner, type):  # the raw attribute (a classmethod stays one), inherited ones too
            raw = next(c.__dict__[attr] for c in owner.__mro__ if attr in c.__dict__)
        else:
            raw = getattr(owner, attr)
        fn = raw.__func__ if isinstance(raw, classmethod) else raw

        @functools.wraps(fn)
        def traced(*args, **kwargs):
            self._enter()
            try:
                return fn(*args, **kwargs)
            finally:
                self._exit(name)

        setattr(owner, attr, classmethod(traced) if isinstance(raw, classmethod) else traced)


def resolve(path: str) -> Any:
    """A module, or a class of a module, by dotted path."""
    try:
        return importlib.import_module(path)
    except ModuleNotFoundError:
        module, _, cls = path.rpartition(".")
        return getattr(importlib.import_module(module), cls)


def main() -> None:
    parser = arguments(__doc__, "memory")
    parser.add_argument("--events", type=int, default=300, help="run.events of the traced job")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    args = parse(parser)
    start_mb = status_mb("VmRSS")  # common (imported above) has imported torch

    from saccade_sim import checkpoint, runfolder
    from saccade_sim.config import load
    from saccade_sim.experiment import Experiment

    imported_mb = status_mb("VmRSS")
    tracer = Tracer()
    for path, attr in PHASES:
        tracer.wrap(resolve(path), attr, f"{path.rsplit('.', 1)[-1]}.{attr}")
    cfg = load(None, [f"run.events={args.events}", "run.progress=false", *args.set])
    with tempfile.TemporaryDirectory() as out:
        exp = Experiment(cfg)
        runfolder.create(Path(out) / "run")
        results = checkpoint.run_in_folder(exp, Path(out) / "run")
    total = max([status_mb("VmHWM")] + [p["peak MB"] for p in tracer.peaks.values()])
    rows = list(tracer.peaks.values())
    print(f"default job ({cfg.rule.name}, {cfg.data.source}, preset {cfg.network.preset}, batch {cfg.eye.batch}, "
          f"{args.events} events, overrides {args.set or 'none'}), {args.threads} thread(s)")
    import saccade_sim

    print(f"saccade_sim from {Path(saccade_sim.__file__).parent}")
    print(f"resident memory: {start_mb:.0f} MB after importing torch, {imported_mb:.0f} MB after saccade_sim too "
          f"({status_mb('RssFile'):.0f} MB of it now file-backed: mapped library code, shared and reclaimable)")
    print(table(rows, ["phase", "calls", "peak MB", "RSS after MB", "anon after MB", "file after MB",
                       "tensors after MB"]))
    probe = results["probe"]
    print(f"peak of the process: {total:.0f} MB; probe: input {probe['baselines']['input']:.4f}, layers "
          f"{probe['layers']}, random {probe['baselines']['random']}")
    write_json(args.json, args, rows=rows, peak_mb=total, imported_mb=imported_mb, start_mb=start_mb, probe=probe,
               probe_wall_s=results["probe_wall_s"])


if __name__ == "__main__":
    main()
