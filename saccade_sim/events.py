"""Event payloads and the broadcast channel that fans one event out to every subscriber."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import simpy
import torch


@dataclass(frozen=True)
class Glimpse:
    """One fixation of B eyes in lockstep.

    ``data`` [B, C, h, w] is what the eyes see (or, downstream, a layer's output); ``gaze`` [B, D] the
    fixation coordinates; ``stimulus`` and ``label`` [B] which stimulus each eye looks at;
    ``modulator`` [B] the broadcast third factor: +1 saccade within the same stimulus, -1 jump to
    another stimulus, 0 no learning signal (the first fixation). ``draws`` [B, R] (or None) are uniform
    numbers in [0, 1) drawn once per eye and stimulus presentation from the eye's seeded shard stream, for
    rules that need per-presentation randomness (:meth:`agents.rules.base.Rule.draws_needed`).
    """

    index: int
    time: float
    data: torch.Tensor
    gaze: torch.Tensor
    stimulus: torch.Tensor
    label: torch.Tensor
    modulator: torch.Tensor
    draws: torch.Tensor | None = None
    eyes: torch.Tensor | None = None  #: [B] which eyes of the batch fixated (asynchronous eyes); None: all, in order
    #: the same indices on the host (the asynchronous eye's clock runs there), for the code that needs them there
    eyes_host: np.ndarray | None = None
    #: the modulator on the host, where the Eye drew it (which eyes start a presentation, without a device read)
    modulator_host: np.ndarray | None = None

    def with_data(self, data: torch.Tensor) -> "Glimpse":
        return replace(self, data=data)


class Broadcast:
    """One-to-many channel over SimPy events: every process waiting on :meth:`wait` receives the
    value of the next :meth:`publish` at the same simulated instant (no per-subscriber Store hop)."""

    def __init__(self, env: simpy.Environment, name: str = "") -> None:
        self.env = env
        self.name = name
        self._event = env.event()

    def wait(self) -> simpy.Event:
        return self._event

    def publish(self, value: Any) -> None:
        event, self._event = self._event, self.env.event()
        event.succeed(value)
