"""The Eye: B eyes in lockstep walking over a stream of stimuli, one glimpse per fixation.

Pure state + tensor logic; the SimPy process in :mod:`saccade_sim.simulation` only calls
:meth:`Eye.next_glimpse` once per fixation.
"""
from __future__ import annotations

import torch

from .config import EyeConfig
from .events import Glimpse
from .modalities.base import Modality
from .policies import SaccadePolicy


class Eye:
    """Each fixation: a policy picks the gaze (the same fixation count for every eye), eyes that jump
    (probability ``jump_prob``) or whose dwell is over take the next stimuli of a seeded stream, and the
    modulator says, per eye, whether the stimulus stayed the same (+1) or changed (-1; 0 at the first)."""

    def __init__(self, modality: Modality, store: torch.Tensor, labels: torch.Tensor, policy: SaccadePolicy,
                 cfg: EyeConfig, generator: torch.Generator) -> None:
        self.modality = modality
        self.store = store
        self.labels = labels
        self.policy = policy
        self.batch = cfg.batch
        self.jump_prob = cfg.jump_prob
        self.dwell = cfg.dwell or modality.space.size
        self.generator = generator
        self.device = store.device
        self.event = 0  # fixations so far
        self.time = 0.0  # simulated time (ms) of the last fixation
        self.stimulus = torch.zeros(self.batch, dtype=torch.long)  # CPU copy: the stream is CPU-side
        self.stream = torch.randperm(len(store), generator=generator)
        self.pointer = 0

    def _take(self, n: int) -> torch.Tensor:
        """Next n stimulus indices of the stream (a new seeded permutation at each epoch)."""
        out = []
        while n > 0:
            if self.pointer == len(self.stream):
                self.stream = torch.randperm(len(self.store), generator=self.generator)
                self.pointer = 0
            chunk = self.stream[self.pointer:self.pointer + n]
            self.pointer += len(chunk)
            n -= len(chunk)
            out.append(chunk)
        return torch.cat(out)

    def next_glimpse(self, time: float) -> Glimpse:
        step = self.event % self.dwell
        old = self.stimulus
        if step == 0:
            self.stimulus = self._take(self.batch)
        elif self.jump_prob > 0:
            jump = torch.rand(self.batch, generator=self.generator) < self.jump_prob
            self.stimulus = torch.where(jump, self._take(self.batch), old)
        if self.event == 0:
            modulator = torch.zeros(self.batch)
        else:
            modulator = (self.stimulus == old).float() * 2 - 1
        gaze = self.policy.sample(step, self.batch, self.modality.space, self.generator)
        idx = self.stimulus.to(self.device, non_blocking=True)
        gaze_d = gaze.to(self.device, non_blocking=True)
        glimpse = Glimpse(
            index=self.event, time=time, data=self.modality.cut(self.store, idx, gaze_d), gaze=gaze_d,
            stimulus=idx, label=self.labels[idx], modulator=modulator.to(self.device, non_blocking=True),
        )
        self.event += 1
        self.time = time
        return glimpse

    def state_dict(self) -> dict:
        return {"event": self.event, "time": self.time, "stimulus": self.stimulus.clone(),
                "stream": self.stream.clone(), "pointer": self.pointer, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.event = state["event"]
        self.time = state["time"]
        self.stimulus = state["stimulus"].clone()
        self.stream = state["stream"].clone()
        self.pointer = state["pointer"]
        self.generator.set_state(state["generator"])
