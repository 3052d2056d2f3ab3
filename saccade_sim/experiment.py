"""Build and run an experiment from a configuration: data -> modality -> eye -> layer agents -> probe.

:class:`Experiment` is its four parts: building (:mod:`saccade_sim.build`), running (here: the SimPy
simulation, hooks, checks, logs), evaluating (:mod:`saccade_sim.evaluation`: probes, results) and persisting
(:mod:`saccade_sim.persistence`: checkpoints, the run folder).

    exp = Experiment({"rule": {"name": "oja"}, "run": {"events": 2000}})
    results = exp.run()
    exp.save("runs/oja")
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import torch

from .build import Building
from .config import Config
from .evaluation import Evaluation
from .hostsync import deliberate
from .monitors import build_monitors
from .oculomotor import ScanpathTrace
from .persistence import Persistence
from .progress import bar as progress_bar
from .simulation import Simulation

#: results.json fields that differ between two runs of one config: timings and the provenance (date, command)
TIMING_FIELDS = ("wall_s", "glimpses_per_s", "probe_wall_s", "decoding_wall_s", "provenance")


class Experiment(Building, Evaluation, Persistence):
    """Everything one run needs, built from a :class:`Config` (or a TOML-shaped dict).

    ``train`` (and optionally ``test``): map-style torch datasets of (stimulus, label) pairs to use instead of
    ``data.source`` (which then reads ``python:CLASSNAME``; see :func:`saccade_sim.datasets.from_dataset`)."""

    def __init__(self, config: Config | dict[str, Any] | None = None, train: Any = None, test: Any = None) -> None:
        self.build(config, train, test)
        cfg = self.config
        self.attachments: list[Callable[[Simulation], Any]] = []
        self.stateful: dict[str, Any] = {}
        self.simulation = self._new_simulation(0.0)
        self.every(cfg.run.check_every, self._check)
        self.monitors = build_monitors(cfg.record.monitors, self.agents, self.attach, self.device)
        for monitor in self.monitors:
            self.register_state(f"monitor:{monitor.name}", monitor)
        if cfg.record.scanpath:  # the fixations the Eye emits (host-side: what it drew on the CPU)
            self.eye.trace = ScanpathTrace(cfg.record.scanpath, self.modality.space.grid.shape[1])
            self.register_state("scanpath", self.eye.trace)
        if cfg.probe.every_ms:
            self.every(max(1, round(cfg.probe.every_ms / cfg.eye.fixation_ms)), self._probe_during_run)
        self.history: list[dict[str, Any]] = []
        self.decoding: list[dict[str, Any]] = []  #: per-layer probe accuracy over simulated time
        self.wall_s = 0.0  #: seconds simulating, the in-run probes excluded
        self.decoding_wall_s = 0.0  #: seconds spent in the in-run probes (``probe.every_ms``)
        #: called as ``log(kind, entry)`` with each history entry, in-run probe and the final results
        self.loggers: list[Callable[[str, dict[str, Any]], None]] = []

    def _new_simulation(self, start_ms: float) -> Simulation:
        sim = Simulation(self.eye, self.agents, self.config.eye.fixation_ms,
                         [layer.spec.delay_ms for layer in self.layers], start_ms=start_ms, edges=self.edges)
        for start in self.attachments:
            start(sim)
        return sim

    def attach(self, start: Callable[[Simulation], Any]) -> None:
        """Call ``start(simulation)`` now and on every simulation rebuilt after a restore (monitors and
        hooks start their SimPy processes this way, so they survive a checkpoint)."""
        self.attachments.append(start)
        start(self.simulation)

    def every(self, n_events: int, fn: Any, channel: int = -1) -> None:
        """Call ``fn(glimpse)`` on every n-th event of ``channel`` (-1: the network's output, once every sink
        area has processed the event; the chain: the last layer's output), also after a restore from a checkpoint."""
        self.attach(lambda sim: sim.every(n_events, fn, channel))

    def register_state(self, name: str, obj: Any) -> None:
        """Save ``obj.state_dict()`` in every checkpoint and ``obj.load_state_dict(...)`` it on restore
        (recorders, monitors: anything whose buffers a resumed run must continue from)."""
        if name in self.stateful:
            raise ValueError(f"state {name!r} is already registered")
        self.stateful[name] = obj

    def _check(self, glimpse) -> None:
        entry: dict[str, Any] = {"event": glimpse.index + 1, "time_ms": glimpse.time}
        with deliberate("divergence check every run.check_every events"):
            for agent in self.agents:
                for k, v in agent.check(glimpse.time, self.config.run.max_weight_norm).items():
                    entry[f"{agent.name}/{k}"] = v
        self.history.append(entry)
        self._log("history", entry)

    def _log(self, kind: str, entry: dict[str, Any]) -> None:
        for log in self.loggers:
            log(kind, entry)

    def log_to(self, out: str | Path) -> None:
        """Write live logs into ``out`` as ``[log]`` asks (TensorBoard events, history.csv) from now on; the run
        folder of ``saccade-sim run`` gets them without this call."""
        from .logs import RunLog

        if self.world.is_main:
            Path(out).mkdir(parents=True, exist_ok=True)
            self.loggers.append(RunLog(out, self.config.log, self.eye.event, self.history))

    def simulate(self, events: int | None = None, progress: bool | None = None,
                 stop: Callable[[], bool] = lambda: False, pause_every: int = 0,
                 on_pause: Callable[[], None] | None = None) -> int:
        """Run ``events`` more glimpse events (default: what is left of ``run.events``) through the SimPy
        engine; returns how many ran. Stops early once ``stop()`` is true (checked before each event).
        With ``pause_every`` > 0, ``on_pause()`` is called every ``pause_every`` events (counted from event
        0), when no event is in flight (e.g. to write a checkpoint). Ends with a divergence check."""
        events = self.config.run.events - self.eye.event if events is None else events
        show = (self.config.run.progress if progress is None else progress) and self.world.is_main and events > 0
        bar = progress_bar(events * self.config.eye.batch, self.config.rule.name, show, unit="glimpse",
                           unit_scale=True)
        done = 0
        with bar:
            while done < events and not stop():
                chunk = events - done
                if pause_every:
                    chunk = min(chunk, pause_every - self.eye.event % pause_every)
                start, probing = time.perf_counter(), self.decoding_wall_s
                ran = self.simulation.run(chunk, tick=lambda: bar.update(self.config.eye.batch), stop=stop)
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
                self.wall_s += time.perf_counter() - start - (self.decoding_wall_s - probing)
                done += ran
                if ran == chunk and pause_every and self.eye.event % pause_every == 0 and on_pause is not None:
                    self.verify()
                    on_pause()
        self.verify()
        return done

    def verify(self) -> None:
        """Raise DivergenceError if any layer's weights are non-finite or exploded (no state changes)."""
        with deliberate("divergence check at the end of simulate"):
            for agent in self.agents:
                why = agent.diverged(self.config.run.max_weight_norm)
                if why:
                    raise agent.divergence_error(why, self.eye.time)

    def run(self, progress: bool | None = None) -> dict[str, Any]:
        """Simulate ``run.events`` events, then probe every layer; returns the ``results.json`` tree."""
        self.simulate(progress=progress)
        start = time.perf_counter()
        show = self.config.run.progress if progress is None else progress
        probe = self.probe(show) if self.config.probe.enabled and self.world.is_main else {}
        self.results = self._results(probe, time.perf_counter() - start)
        self._log("results", self.results)
        return self.results
