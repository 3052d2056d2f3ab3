"""The Eye: B eyes in lockstep walking over stimuli, one glimpse per fixation.

The B eyes are split into ``eye.shards`` logical shards of B / S eyes. Shard s owns its part of the store
(stimuli s, s + S, s + 2S, ...), its own seeded generator (``stream_seed(seed, "eye", s)``) and its own
stimulus stream, so what shard s sees does not depend on which process runs it: a distributed run gives
each rank a contiguous range of shards (:mod:`saccade_sim.distributed`).

Pure state + tensor logic; the SimPy process in :mod:`saccade_sim.simulation` only calls
:meth:`Eye.next_glimpse` once per fixation.
"""
from __future__ import annotations

from typing import Sequence

import torch

from .config import EyeConfig
from .errors import ConfigError
from .events import Glimpse
from .modalities.base import Modality
from .policies import SaccadePolicy
from .seeding import generator


class StimulusStream:
    """One logical shard's stimuli: ``items`` (store indices) in a new seeded permutation at each epoch."""

    def __init__(self, items: torch.Tensor, gen: torch.Generator) -> None:
        self.items = items
        self.generator = gen
        self.order = torch.randperm(len(items), generator=gen)
        self.pointer = 0

    def take(self, n: int) -> torch.Tensor:
        """The next n store indices of the stream."""
        out = []
        while n > 0:
            if self.pointer == len(self.order):
                self.order = torch.randperm(len(self.items), generator=self.generator)
                self.pointer = 0
            chunk = self.order[self.pointer:self.pointer + n]
            self.pointer += len(chunk)
            n -= len(chunk)
            out.append(self.items[chunk])
        return torch.cat(out)

    def state_dict(self) -> dict:
        return {"order": self.order.clone(), "pointer": self.pointer, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.order = state["order"].clone()
        self.pointer = state["pointer"]
        self.generator.set_state(state["generator"])


class Eye:
    """Each fixation: a policy picks the gaze (the same fixation count for every eye), eyes that jump
    (probability ``jump_prob``) or whose dwell is over take the next stimuli of their shard's stream, and
    the modulator says, per eye, whether the stimulus stayed the same (+1) or changed (-1; 0 at the first).

    ``shards`` are the logical shards this Eye runs (default: all ``cfg.shards``); its batch is
    ``len(shards) * cfg.batch / cfg.shards`` eyes, shard after shard.

    A *presentation* begins where an eye takes a stimulus (a new dwell or a jump). Then its view (the
    modality's :meth:`Modality.sample_view`: a random crop, a flip) and its ``draws`` uniform numbers (for
    rules, ``Glimpse.draws``) are drawn from its shard's stream and kept until the next presentation.
    """

    def __init__(self, modality: Modality, store: torch.Tensor, labels: torch.Tensor, policy: SaccadePolicy,
                 cfg: EyeConfig, seed: int, shards: Sequence[int] | None = None, draws: int = 0) -> None:
        n_shards = cfg.shard_count()
        if len(store) < n_shards:
            raise ConfigError(f"eye.shards: {n_shards} shards need at least as many training stimuli, "
                              f"got {len(store)}")
        self.modality = modality
        self.store = store
        self.labels = labels
        self.policy = policy
        self.shard_ids = list(range(n_shards) if shards is None else shards)
        self.per_shard = cfg.batch // n_shards
        self.batch = self.per_shard * len(self.shard_ids)
        self.jump_prob = cfg.jump_prob
        self.dwell = cfg.dwell or modality.space.size
        self.device = store.device
        self.event = 0  # fixations so far
        self.time = 0.0  # simulated time (ms) of the last fixation
        everything = torch.arange(len(store))
        self.streams = [StimulusStream(everything[s::n_shards], generator(seed, "eye", s)) for s in self.shard_ids]
        self.stimulus = torch.zeros(self.batch, dtype=torch.long)  # CPU copy: the streams are CPU-side
        self.view = torch.zeros(self.batch, modality.view_size, dtype=torch.long)  #: each eye's presentation view
        self.draws = torch.zeros(self.batch, draws)  #: each eye's presentation draws

    def _shard_step(self, stream: StimulusStream, step: int, old: torch.Tensor, view: torch.Tensor,
                    draws: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """One shard's stimuli, gazes [per_shard, D], views and draws for this fixation, from its own generator."""
        n, gen = self.per_shard, stream.generator
        if step == 0:
            new, fresh = stream.take(n), torch.ones(n, dtype=torch.bool)
        elif self.jump_prob > 0:
            fresh = torch.rand(n, generator=gen) < self.jump_prob
            new = torch.where(fresh, stream.take(n), old)
        else:
            new, fresh = old, torch.zeros(n, dtype=torch.bool)
        if view.shape[1]:
            view = torch.where(fresh[:, None], self.modality.sample_view(n, gen), view)
        if draws.shape[1]:
            draws = torch.where(fresh[:, None], torch.rand(n, draws.shape[1], generator=gen), draws)
        return new, self.policy.sample(step, n, self.modality.space, gen), view, draws

    def next_glimpse(self, time: float) -> Glimpse:
        step = self.event % self.dwell
        old = self.stimulus
        chunks = [t.split(self.per_shard) for t in (old, self.view, self.draws)]
        parts = [self._shard_step(s, step, *c) for s, *c in zip(self.streams, *chunks)]
        self.stimulus, gaze, self.view, self.draws = (torch.cat(t) for t in zip(*parts))
        if self.event == 0:
            modulator = torch.zeros(self.batch)
        else:
            modulator = (self.stimulus == old).float() * 2 - 1
        idx = self.stimulus.to(self.device, non_blocking=True)
        gaze_d = gaze.to(self.device, non_blocking=True)
        view = self.view.to(self.device, non_blocking=True) if self.view.shape[1] else None
        data = self.modality.cut(self.store, idx, gaze_d) if view is None else self.modality.cut(self.store, idx, gaze_d, view)
        glimpse = Glimpse(
            index=self.event, time=time, data=data, gaze=gaze_d, stimulus=idx, label=self.labels[idx],
            modulator=modulator.to(self.device, non_blocking=True),
            draws=self.draws.to(self.device, non_blocking=True) if self.draws.shape[1] else None,
        )
        self.event += 1
        self.time = time
        return glimpse

    def state_dict(self) -> dict:
        """Clock and, per logical shard id, its eyes' stimuli and its stream (so shards can move between ranks)."""
        parts = zip(self.shard_ids, self.streams, *(t.split(self.per_shard) for t in (self.stimulus, self.view, self.draws)))
        return {"event": self.event, "time": self.time,
                "shards": {s: {"stimulus": st.clone(), "view": v.clone(), "draws": d.clone(), **stream.state_dict()}
                           for s, stream, st, v, d in parts}}

    def load_state_dict(self, state: dict) -> None:
        """Restore this Eye's shards from a state holding (at least) every shard it runs."""
        missing = [s for s in self.shard_ids if s not in state["shards"]]
        if missing:
            raise ConfigError(f"eye.shards: the saved state has no shard {missing[0]} "
                              f"(it holds {sorted(state['shards'])})")
        self.event = state["event"]
        self.time = state["time"]
        for s, stream in zip(self.shard_ids, self.streams):
            stream.load_state_dict(state["shards"][s])
        for name in ("stimulus", "view", "draws"):
            setattr(self, name, torch.cat([state["shards"][s][name] for s in self.shard_ids]).clone())
