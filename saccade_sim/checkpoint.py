"""Runs that survive being stopped: a run folder, periodic checkpoints, Ctrl-C, resume.

A run folder holds ``config.json`` (written first), ``checkpoint.pt`` (rewritten every
``run.checkpoint_every`` events, after Ctrl-C / SIGTERM, and at the end) and, only once the run is
complete, ``results.json`` (written last): a folder without ``results.json`` is an unfinished run that
``saccade-sim run --resume DIR`` continues. Every file goes through :mod:`saccade_sim.io` (temporary file +
rename), so a kill at any moment leaves the last good checkpoint intact.
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

from . import io
from .config import Config, apply_override, resolve
from .errors import ConfigError, DataError, DivergenceError, Interrupted
from .experiment import CHECKPOINT_FORMAT, Experiment

CONFIG, CHECKPOINT, RESULTS = "config.json", "checkpoint.pt", "results.json"
#: files a run writes; ``--overwrite`` removes them (results.json first) before a new run starts
OUTPUTS = (RESULTS, CHECKPOINT, CONFIG, "history.npz", "learning_curve.png")


def prepare_folder(out: Path, overwrite: bool) -> None:
    """Refuse a folder that holds anything unless ``overwrite``; then clear our earlier outputs."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a folder")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise ConfigError(f"{out}: output folder is not empty (holds another run); "
                              "pass --overwrite, choose another --out, or continue it with --resume")
        for name in OUTPUTS:
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


def check_checkpointable(exp: Experiment) -> None:
    """Checkpoints are taken when no event is in flight; that needs the layers' summed conduction delays
    to end before the next fixation, or the resumed clock would differ from an uninterrupted run's."""
    cfg = exp.config
    total = sum(layer.spec.delay_ms for layer in exp.layers)
    if cfg.run.checkpoint_every and total >= cfg.eye.fixation_ms:
        raise ConfigError(f"run.checkpoint_every: needs the layers' summed delay_ms ({total:g} ms) to be shorter "
                          f"than eye.fixation_ms ({cfg.eye.fixation_ms:g} ms); set run.checkpoint_every = 0")


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """While inside, SIGINT (Ctrl-C) and SIGTERM set the yielded flag instead of raising; a second signal
    stops at once. Outside the main thread nothing is installed."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.getsignal(s) for s in signals}

    def handler(signum, frame):
        if flag.is_set():
            raise KeyboardInterrupt
        flag.set()

    for s in signals:
        signal.signal(s, handler)
    try:
        yield flag
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def write_checkpoint(exp: Experiment, out: Path) -> None:
    """Check the weights are sound, then replace ``out/checkpoint.pt`` atomically. Every rank of a
    distributed run calls this (the eye shards are gathered); only rank 0 writes."""
    exp.verify()
    state = exp.state_dict()
    if exp.world.is_main:
        io.save_torch(out / CHECKPOINT, state)


def run_in_folder(exp: Experiment, out: Path) -> dict[str, Any]:
    """Simulate what is left of ``run.events`` with checkpoints in ``out``, probe, save everything.

    Raises :class:`Interrupted` after writing a checkpoint when stopped by a signal, and
    :class:`DivergenceError` (naming layer, time and the last good checkpoint) when a layer diverges.
    """
    out = Path(out)
    check_checkpointable(exp)
    if exp.world.is_main:
        io.write_json(out / CONFIG, exp.config.to_dict())
    saved = [exp.eye.event if (out / CHECKPOINT).exists() else None]

    def checkpoint() -> None:
        write_checkpoint(exp, out)
        saved[0] = exp.eye.event

    if exp.config.log.tensorboard or exp.config.log.csv:
        exp.log_to(out)
    with stop_on_signals() as stop:
        try:
            exp.simulate(stop=stop.is_set, pause_every=exp.config.run.checkpoint_every, on_pause=checkpoint)
        except DivergenceError as exc:
            kept = (f"the last good checkpoint ({out / CHECKPOINT}, event {saved[0]}) is kept"
                    if saved[0] is not None else "no checkpoint was written (set run.checkpoint_every)")
            raise DivergenceError(f"{exc}; {kept}; no results.json written") from None
        if stop.is_set():
            checkpoint()
            raise Interrupted(f"stopped at event {exp.eye.event} of {exp.config.run.events} "
                              f"(t = {exp.eye.time:.0f} ms); checkpoint written to {out / CHECKPOINT}; "
                              f"continue with: saccade-sim run --resume {out}")
    results = exp.run()  # the simulation is done: this probes (with a bar when run.progress)
    exp.save(out)
    return results


RESUMABLE = ("run.events", "run.progress", "run.checkpoint_every", "run.check_every", "run.max_weight_norm",
             "log.tensorboard", "log.csv")


def load_checkpoint(out: Path, overrides: Sequence[str] = ()) -> tuple[dict[str, Any], Config]:
    """Read ``out/checkpoint.pt`` (``weights_only``) and its configuration with ``overrides`` applied;
    ``overrides`` may change only the keys in :data:`RESUMABLE` (e.g. extend ``run.events``)."""
    path = Path(out) / CHECKPOINT
    state = io.load_torch(path)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise DataError(f"{path}: not a saccade-sim checkpoint of format {CHECKPOINT_FORMAT} (found {found!r})")
    tree = state["config"]
    for assignment in overrides:
        key = assignment.split("=", 1)[0].strip()
        if key not in RESUMABLE:
            raise ConfigError(f"--set {key}: cannot change when resuming; only {', '.join(RESUMABLE)}")
        apply_override(tree, assignment)
    return state, resolve(tree)


def restore(out: Path, state: dict[str, Any], cfg: Config) -> Experiment:
    """Rebuild the experiment of :func:`load_checkpoint` at the saved event."""
    out, path = Path(out), Path(out) / CHECKPOINT
    exp = Experiment(cfg)
    try:
        exp.load_state_dict(state)
    except (KeyError, IndexError, RuntimeError, ValueError, TypeError) as exc:
        raise DataError(f"{path}: does not fit the experiment it describes "
                        f"({type(exc).__name__}: {exc})") from None
    if exp.eye.event > exp.config.run.events:
        raise ConfigError(f"run.events: {exp.config.run.events} is fewer than the {exp.eye.event} events "
                          f"already simulated in {path}")
    if (out / RESULTS).exists():
        if exp.eye.event == exp.config.run.events:
            raise ConfigError(f"{out}: the run is already complete ({RESULTS} present); "
                              "extend it with --set run.events=N")
        if exp.world.is_main:
            (out / RESULTS).unlink()
    return exp


def resume(out: Path, overrides: Sequence[str] = ()) -> Experiment:
    """Rebuild the experiment saved in ``out`` at the saved event (see :func:`load_checkpoint`)."""
    return restore(out, *load_checkpoint(out, overrides))
