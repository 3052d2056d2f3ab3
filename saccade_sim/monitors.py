"""Recording (in the spirit of Brian2's monitors and Nengo's probes): SimPy processes subscribed to a
:class:`~saccade_sim.events.Broadcast` channel that copy one quantity into a preallocated ring buffer.

A monitor is configured by a :class:`~saccade_sim.specs.MonitorSpec` (``[[record.monitors]]`` in TOML):

- ``target``: ``"eye"`` (the glimpse channel) or a layer name (``"layer1"``: that layer's output channel);
- ``quantity``: eye: ``glimpse``, ``gaze``, ``modulator``, ``stimulus``; layer: ``activity`` (the transmitted
  output), ``weights``, ``dendrite`` (the dendritic prediction, only for rules that expose the hook
  ``Rule.dendritic_prediction() -> Tensor [B, ...]``), ``loss`` (the local loss of the last event, for rules
  that return one), ``modulator``;
- ``every`` events or ``every_ms`` simulated ms; ``max_len`` samples kept (the newest); ``eyes`` a subset of
  the batch.

Samples are copied on the device into the buffer (no host synchronisation per event); they move to the CPU
only in :meth:`RingBuffer.ordered`, :meth:`Monitor.state_dict` and :func:`save_recordings`. Memory is
``max_len`` samples whatever the run length. Nothing is recorded unless a monitor is listed.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Generator, Sequence

import numpy as np
import torch

from . import io
from .errors import ConfigError, SaccadeSimError
from .events import Broadcast, Glimpse
from .specs import MonitorSpec

Reader = Callable[[Glimpse], torch.Tensor]


class RingBuffer:
    """The newest ``max_len`` samples of one tensor quantity: slot ``count % max_len`` is overwritten.

    The data buffer [max_len, *shape] is allocated on the first sample's device and dtype; time stamps
    (simulated ms) and event indices are host-side numbers that the simulation already knows.
    """

    def __init__(self, max_len: int, device: torch.device | str = "cpu") -> None:
        self.max_len = max_len
        self.device = torch.device(device)
        self.data: torch.Tensor | None = None
        self.time = np.zeros(max_len, dtype=np.float64)
        self.event = np.zeros(max_len, dtype=np.int64)
        self.count = 0  # samples ever appended

    def append(self, x: torch.Tensor, time_ms: float, event: int) -> None:
        if self.data is None:
            self.data = torch.empty((self.max_len, *x.shape), dtype=x.dtype, device=self.device)
        elif x.shape != self.data.shape[1:]:
            raise SaccadeSimError(f"recorded quantity changed shape from {tuple(self.data.shape[1:])} "
                                  f"to {tuple(x.shape)}")
        i = self.count % self.max_len
        self.data[i].copy_(x.detach(), non_blocking=True)
        self.time[i], self.event[i] = time_ms, event
        self.count += 1

    def order(self) -> np.ndarray:
        """Slot indices from the oldest kept sample to the newest."""
        n = min(self.count, self.max_len)
        start = self.count % self.max_len if self.count > self.max_len else 0
        return (start + np.arange(n)) % self.max_len

    def ordered(self) -> dict[str, np.ndarray]:
        """``data`` [n, *shape], ``time_ms`` [n], ``event`` [n], oldest first (one device-to-host copy)."""
        idx = self.order()
        data = (self.data[torch.from_numpy(idx).to(self.data.device)].cpu().numpy()
                if self.data is not None else np.zeros((0,), dtype=np.float32))
        return {"data": data, "time_ms": self.time[idx], "event": self.event[idx]}

    def state_dict(self) -> dict[str, Any]:
        o = self.ordered()
        return {"data": torch.from_numpy(o["data"]), "time_ms": torch.from_numpy(o["time_ms"]),
                "event": torch.from_numpy(o["event"])}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        n = min(len(state["time_ms"]), self.max_len)
        self.data = None
        if n:
            data = state["data"].to(self.device)
            self.data = torch.empty((self.max_len, *data.shape[1:]), dtype=data.dtype, device=self.device)
            self.data[:n].copy_(data[-self.max_len:])
        self.time[:n] = state["time_ms"].numpy()[-self.max_len:]
        self.event[:n] = state["event"].numpy()[-self.max_len:]
        self.count = n  # kept samples now in slots 0..n-1, oldest first: the next append follows them


class Monitor:
    """One recording: a SimPy process that waits on a channel and samples ``read(glimpse)`` when due."""

    def __init__(self, spec: MonitorSpec, read: Reader, name: str, device: torch.device | str = "cpu") -> None:
        self.spec = spec
        self.read = read
        self.name = name
        self.buffer = RingBuffer(spec.max_len, device)
        self.next_ms = -math.inf

    def due(self, glimpse: Glimpse, now_ms: float) -> bool:
        """Every ``every`` events, or at the first event at or after each multiple of ``every_ms``."""
        if self.spec.every_ms > 0:
            if now_ms < self.next_ms:
                return False
            self.next_ms = (math.floor(now_ms / self.spec.every_ms) + 1) * self.spec.every_ms
            return True
        return (glimpse.index + 1) % self.spec.every == 0

    def process(self, channel: Broadcast) -> Generator:
        env = channel.env
        while True:
            glimpse = yield channel.wait()
            if self.due(glimpse, env.now):
                self.buffer.append(self.read(glimpse), float(env.now), glimpse.index)

    def state_dict(self) -> dict[str, Any]:
        return {"buffer": self.buffer.state_dict(), "next_ms": self.next_ms}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.buffer.load_state_dict(state["buffer"])
        self.next_ms = float(state["next_ms"])


def _select(read: Reader, eyes: Sequence[int], device: torch.device | str) -> Reader:
    if not eyes:
        return read
    index = torch.tensor(list(eyes), device=device)  # made once, here: no host-to-device copy during the run
    return lambda g: read(g).index_select(0, index)


def _layer_reader(quantity: str, agent: Any, where: str) -> Reader:
    if quantity == "activity":
        return lambda g: g.data
    if quantity == "modulator":
        return lambda g: g.modulator
    if quantity == "weights":
        return lambda g: agent.layer.weight.detach()
    if quantity == "dendrite":
        hook = getattr(agent.rule, "dendritic_prediction", None)
        if hook is None:
            raise ConfigError(f"{where}.quantity: rule {type(agent.rule).__name__} exposes no dendritic "
                              "prediction (no dendritic_prediction() hook)")
        return lambda g: hook()

    def loss(g: Glimpse) -> torch.Tensor:
        if agent.last_loss is None:
            raise SaccadeSimError(f"{where}.quantity: rule {type(agent.rule).__name__} returns no local loss")
        return agent.last_loss

    return loss


def build_monitors(specs: Sequence[MonitorSpec], agents: Sequence[Any],
                   attach: Callable[[Callable[[Any], Any]], None], device: torch.device | str = "cpu") -> list[Monitor]:
    """Create one :class:`Monitor` per spec over the layer ``agents``; ``attach(start)`` starts its process
    on the right channel of every simulation (``Experiment.attach``, so monitors survive a restore)."""
    names = [a.name for a in agents]
    monitors: list[Monitor] = []
    for i, spec in enumerate(specs):
        where = f"record.monitors[{i}]"
        if spec.target == "eye":
            channel = 0
            read: Reader = {"glimpse": lambda g: g.data, "gaze": lambda g: g.gaze,
                            "modulator": lambda g: g.modulator, "stimulus": lambda g: g.stimulus}[spec.quantity]
        elif spec.target in names:
            channel = names.index(spec.target) + 1
            read = _layer_reader(spec.quantity, agents[channel - 1], where)
        else:
            raise ConfigError(f"{where}.target: unknown value {spec.target!r}; valid choices: eye, {', '.join(names)}")
        if spec.eyes and spec.quantity not in ("weights", "loss"):
            read = _select(read, spec.eyes, device)
        name = spec.name or f"{spec.target}_{spec.quantity}"
        if name in [m.name for m in monitors]:
            raise ConfigError(f"{where}.name: {name!r} is used by another monitor; give each a distinct name")
        monitor = Monitor(spec, read, name, device)
        attach(lambda sim, m=monitor, c=channel: sim.env.process(m.process(sim.channels[c])))
        monitors.append(monitor)
    return monitors


def save_recordings(monitors: Sequence[Monitor], out: Path) -> list[Path]:
    """Write ``record_NAME.npz`` (``data``, ``time_ms``, ``event``) for each monitor into ``out``."""
    paths = []
    for m in monitors:
        path = Path(out) / f"record_{m.name}.npz"
        io.save_npz(path, {**m.buffer.ordered(), "quantity": np.array(m.spec.quantity),
                           "target": np.array(m.spec.target)})
        paths.append(path)
    return paths
