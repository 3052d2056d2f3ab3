"""Runs that survive being stopped: a run folder, periodic checkpoints, signals, resume.

A run folder holds ``config.json`` (written first), ``checkpoint.pt`` (rewritten every
``run.checkpoint_every`` events, after Ctrl-C / SIGTERM, and when the simulation ends, before the probe) and,
only once the run is complete, ``results.json`` (written last): a folder without ``results.json`` is an
unfinished run that ``saccade-sim run --resume DIR`` continues (if its simulation is complete, the resume
only probes and saves). Every file goes through :mod:`saccade_sim.io` (temporary file + rename), so a kill
at any moment leaves the last good checkpoint intact; :mod:`saccade_sim.signals` says what a signal does
in each phase, and :mod:`saccade_sim.runfolder` keeps a second writer out.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from . import io
from .config import Config, apply_override, resolve
from .errors import ConfigError, DataError, DivergenceError, Interrupted
from .experiment import Experiment
from .persistence import CHECKPOINT_FORMAT
from .runfolder import CHECKPOINT, CONFIG, RESULTS, require_folder
from .signals import RunSignals, SignalStop, name
from .wiring import latency


def check_checkpointable(exp: Experiment) -> None:
    """Checkpoints are taken when no event is in flight; that needs the network's conduction delays (its longest
    feedforward path, :func:`saccade_sim.wiring.latency`) to end before the next fixation, or the resumed clock
    would differ from an uninterrupted run's."""
    cfg = exp.config
    total = latency(exp.edges)
    if cfg.run.checkpoint_every and total >= cfg.eye.fixation_ms:
        raise ConfigError(f"run.checkpoint_every: needs the network's summed delay_ms along its longest feedforward "
                          f"path ({total:g} ms) to be shorter than eye.fixation_ms ({cfg.eye.fixation_ms:g} ms); set "
                          "run.checkpoint_every = 0")


def write_checkpoint(exp: Experiment, out: Path) -> None:
    """Check the weights are sound, then replace ``out/checkpoint.pt`` atomically. Every rank of a
    distributed run calls this (the eye shards are gathered); only rank 0 writes."""
    exp.verify()
    state = exp.state_dict()
    if exp.world.is_main:
        io.save_torch(out / CHECKPOINT, state)


def run_in_folder(exp: Experiment, out: Path) -> dict[str, Any]:
    """Simulate what is left of ``run.events`` with checkpoints in ``out``, checkpoint, probe, save everything.

    Raises :class:`Interrupted` when stopped by SIGINT or SIGTERM (after writing a checkpoint, or with the
    complete simulation's checkpoint already on disk when the probe or the save was stopped), and
    :class:`DivergenceError` (naming layer, time and the last good checkpoint) when a layer diverges.
    """
    out = Path(out)
    check_checkpointable(exp)
    events = exp.config.run.events
    saved = [exp.eye.event if (out / CHECKPOINT).exists() else None]  # restore() checked that one

    def checkpoint() -> None:
        with signals.deferred():
            write_checkpoint(exp, out)
        saved[0] = exp.eye.event

    def kept() -> str:
        return (f"the last good checkpoint ({out / CHECKPOINT}, event {saved[0]}) is kept" if saved[0] is not None
                else "no checkpoint was written (set run.checkpoint_every)")

    if exp.config.log.tensorboard or exp.config.log.csv:
        exp.log_to(out)
    with RunSignals() as signals:
        if exp.world.is_main:
            with signals.deferred():
                io.write_json(out / CONFIG, exp.config.to_dict())
        try:
            exp.simulate(stop=signals.requested, pause_every=exp.config.run.checkpoint_every, on_pause=checkpoint)
            if saved[0] != exp.eye.event:
                checkpoint()  # the simulation's end (or the stopping point): on disk before the probe starts
        except DivergenceError as exc:
            raise DivergenceError(f"{exc}; {kept()}; no results.json written") from None
        except SignalStop as stop:
            raise Interrupted(f"stopped at once by a second signal ({name(stop.signum)}) during event "
                              f"{exp.eye.event}; {kept()}; continue with: saccade-sim run --resume {out}",
                              stop.signum) from None
        if signals.received is not None:
            where = (f"stopped at event {exp.eye.event} of {events} (t = {exp.eye.time:.0f} ms)"
                     if exp.eye.event < events else f"the simulation is complete ({events} events)")
            raise Interrupted(f"{where}; checkpoint written to {out / CHECKPOINT}; "
                              f"continue with: saccade-sim run --resume {out}", signals.received)
        try:
            with signals.immediate():
                results = exp.run()  # the simulation is done: this probes (with a bar when run.progress)
                exp.save(out)
        except SignalStop as stop:
            raise Interrupted(f"{name(stop.signum)} during the probe or the save: the simulation is complete "
                              f"({events} events) and checkpointed in {out / CHECKPOINT}, no results.json "
                              f"written; finish the probe and the save with: saccade-sim run --resume {out}",
                              stop.signum) from None
    return results


RESUMABLE = ("run.events", "run.progress", "run.checkpoint_every", "run.check_every", "run.max_weight_norm",
             "log.tensorboard", "log.csv", "run.threads")


def load_checkpoint(out: Path, overrides: Sequence[str] = ()) -> tuple[dict[str, Any], Config]:
    """Read ``out/checkpoint.pt`` (``weights_only``) and its configuration with ``overrides`` applied;
    ``overrides`` may change only the keys in :data:`RESUMABLE` (e.g. extend ``run.events``)."""
    path = Path(out) / CHECKPOINT
    require_folder(out, "--resume")
    if not path.exists() and (Path(out) / CONFIG).exists():
        raise DataError(f"{path}: no checkpoint here: the run in {out} ended before its first checkpoint (killed, "
                        "or run.checkpoint_every = 0 and never stopped cleanly), so there is nothing to resume; "
                        f"start it again with --out {out} --overwrite")
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
    try:
        exp.verify()
    except DivergenceError as exc:
        raise DivergenceError(f"{path}: the saved weights already fail the divergence check ({exc}); "
                              "nothing was changed") from None
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
