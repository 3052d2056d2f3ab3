"""The Eye: B eyes in lockstep walking over stimuli, one glimpse per fixation.

The B eyes are split into ``eye.shards`` logical shards of B / S eyes. Shard s owns its part of the store
(stimuli s, s + S, s + 2S, ...), its own seeded generator (``stream_seed(seed, "eye", s)``) and its own
stimulus stream, so what shard s sees does not depend on which process runs it: a distributed run gives
each rank a contiguous range of shards (:mod:`saccade_sim.distributed`).

The draws (stimuli, jumps, gazes, modulators; a closed-loop policy's random part) are made on the CPU, from CPU
generators, so that CPU and GPU runs draw the same; they are made ahead, a block of ``block_events`` events at
a time, and reach the device as one copy per block (from pinned memory, asynchronously), so that an event costs
no host-to-device copy: it only selects its row of the block, lets a closed-loop policy choose its gazes on the
device from that row and its maps, and cuts its glimpses from the stimulus store on the device. Inside a
block the draws are made event after event by the same code as one event at a time, so the stream does not
depend on the block length, and :meth:`Eye.state_dict` (replaying the draws of the current block up to the
current event) is the state one event at a time would have had.

Pure state + tensor logic; the SimPy process in :mod:`saccade_sim.simulation` only calls
:meth:`Eye.next_glimpse` once per fixation.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
import torch

from .errors import ConfigError
from .events import Glimpse
from .hostsync import deliberate, host_side
from .parts import ClosedLoopGazePolicy, GazePolicy, GlimpseSource
from .seeding import generator
from .specs import EyeConfig


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


#: draws of one block at most: ``block_events`` = min(MAX_BLOCK_EVENTS, BLOCK_DRAWS // batch), at least 1
BLOCK_DRAWS = 2 ** 16
MAX_BLOCK_EVENTS = 256


class Block(NamedTuple):
    """The draws of events ``start`` .. ``start + len - 1`` on the device: ``stimulus`` and ``label`` [N, B],
    ``gaze`` [N, B, D] (a closed-loop policy's fallback gazes), ``modulator`` [N, B], ``view`` [N, B, V],
    ``draws`` [N, B, R] and a closed-loop policy's ``first`` [N, B] and ``noise`` [N, B, G] (None when empty)."""

    start: int
    stimulus: torch.Tensor
    gaze: torch.Tensor
    modulator: torch.Tensor
    label: torch.Tensor
    view: torch.Tensor | None
    draws: torch.Tensor | None
    first: torch.Tensor | None
    noise: torch.Tensor | None


class State(NamedTuple):
    """The eyes' state on the CPU after an event: ``stimulus`` [B], presentation ``view`` [B, V], ``draws`` [B, R]."""

    stimulus: torch.Tensor
    view: torch.Tensor
    draws: torch.Tensor


class Eye:
    """Each fixation: a policy picks the gaze (the same fixation count for every eye), eyes that jump
    (probability ``jump_prob``) or whose dwell is over take the next stimuli of their shard's stream, and
    the modulator says, per eye, whether the stimulus stayed the same (+1) or changed (-1; 0 at the first).

    ``shards`` are the logical shards this Eye runs (default: all ``cfg.shards``); its batch is
    ``len(shards) * cfg.batch / cfg.shards`` eyes, shard after shard. ``block_events`` (0: about 2^16 draws
    per block) sets how many events are drawn and copied to the device at once; it does not change the draws. A
    policy that subscribes to channels (closed loop) draws its random part in the block too; its gaze, which
    depends on what it observed, is chosen on the device at the event (a subscribing policy with only
    ``sample``: one event per block, each gaze drawn after the event before was observed).

    A *presentation* begins where an eye takes a stimulus (a new dwell or a jump). Then its view (the
    modality's :meth:`Modality.sample_view`: a random crop, a flip) and its ``draws`` uniform numbers (for
    rules, ``Glimpse.draws``) are drawn from its shard's stream and kept until the next presentation.
    """

    def __init__(self, modality: GlimpseSource, store: torch.Tensor, labels: torch.Tensor, policy: GazePolicy,
                 cfg: EyeConfig, seed: int, shards: Sequence[int] | None = None, draws: int = 0,
                 block_events: int = 0) -> None:
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
        # CPU, as of the last event drawn: each eye's stimulus, presentation view and presentation draws
        self.stimulus = torch.zeros(self.batch, dtype=torch.long)
        self.view = torch.zeros(self.batch, modality.view_size, dtype=torch.long)
        self.draws = torch.zeros(self.batch, draws)
        subscribes = bool(getattr(policy, "subscribes", ()))
        #: a closed-loop policy that draws ahead and chooses on the device (``draw`` and ``gaze``); one that only
        #: has ``sample`` draws each gaze after the last event is observed, one event per block
        self.closed_loop: ClosedLoopGazePolicy | None = policy if subscribes and hasattr(policy, "draw") else None
        if subscribes and self.closed_loop is None:
            block_events = 1
        per_event = self.batch * (1 + (modality.space.size if self.closed_loop else 0))
        self.block_events = block_events or max(1, min(MAX_BLOCK_EVENTS, BLOCK_DRAWS // per_event))
        if hasattr(policy, "bind"):  # any policy that keeps state per eye (the closed-loop ones: on the device)
            policy.bind(modality.space, self.batch, self.device)
        self.last_view: torch.Tensor | None = None  #: the presentation views [B, V] of the last event (None: no views)
        self.trace = None  #: a :class:`~saccade_sim.oculomotor.ScanpathTrace` logging every fixation (record.scanpath)
        self._block: Block | None = None
        #: streams and eye state before the block, and whether the policy had observed an event then
        self._block_start: tuple[list[dict], State, bool] | None = None

    def _shard_step(self, stream: StimulusStream, step: int, old: torch.Tensor, view: torch.Tensor,
                    draws: torch.Tensor, observed: bool) -> tuple[torch.Tensor, ...]:
        """One shard's stimuli, gazes [per_shard, D], views, draws, and a closed-loop policy's first [per_shard]
        and noise [per_shard, G] (else empty) for this fixation, from its own generator."""
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
        space = self.modality.space
        if self.closed_loop is None:
            no_first = torch.zeros(n, 0, dtype=torch.long)
            return new, self.policy.sample(step, n, space, gen), view, draws, no_first, torch.zeros(n, 0)
        fallback, first, noise = self.closed_loop.draw(step, n, space, gen, observed)
        return new, fallback, view, draws, first.long()[:, None], noise

    def _draw(self, streams: list[StimulusStream], old: State, event: int,
              observed: bool) -> tuple[torch.Tensor, torch.Tensor, State]:
        """The draws of one event on the CPU from the streams and the eye state ``old`` of the event before:
        [B, 2 + D + V (+ 1)] long = stimulus, gaze (D), modulator (+1 stayed, -1 changed, 0 at the first event),
        view (V), (a closed-loop policy's first), its noise [B, G] (else [B, 0]), and the new state (stimulus, view,
        draws). ``observed``: whether a closed-loop policy will have observed an event before this one's gazes."""
        step = event % self.dwell
        chunks = [t.split(self.per_shard) for t in old]
        parts = [self._shard_step(s, step, *c, observed) for s, *c in zip(streams, *chunks)]
        new, gaze, view, draws, first, noise = (torch.cat(t) for t in zip(*parts))
        modulator = torch.zeros_like(new) if event == 0 else (new == old.stimulus).long() * 2 - 1
        return torch.cat([new[:, None], gaze, modulator[:, None], view, first], 1), noise, State(new, view, draws)

    def _state(self) -> State:
        return State(self.stimulus, self.view, self.draws)

    def _next_block(self) -> Block:
        """Draw the next ``block_events`` events on the CPU and move them to the device in one copy (the floats:
        the rules' draws and a closed-loop policy's noise, in a second one where there are some)."""
        observed = self.closed_loop is not None and self.closed_loop.observed
        self._block_start = ([s.state_dict() for s in self.streams], self._state(), observed)
        rows, floats = [], []
        for event in range(self.event, self.event + self.block_events):
            row, noise, state = self._draw(self.streams, self._state(), event, observed or event > self.event)
            self.stimulus, self.view, self.draws = state
            rows.append(row)
            floats.append(torch.cat([state.draws, noise], 1))
        packed, packed_floats = torch.stack(rows), torch.stack(floats) if floats[0].shape[1] else None
        with host_side("eye: the host copy of the block's draws"):
            self._block_rows = packed.numpy()  # the modulators on the host, the scan-path trace
        with deliberate("eye: one asynchronous copy per block of draws"):
            if self.device.type == "cuda":
                packed = packed.pin_memory()
                packed_floats = None if packed_floats is None else packed_floats.pin_memory()
            packed = packed.to(self.device, non_blocking=True)
            packed_floats = None if packed_floats is None else packed_floats.to(self.device, non_blocking=True)
        d, v, r = self.modality.space.grid.shape[1], self.view.shape[1], self.draws.shape[1]
        stimulus = packed[..., 0].contiguous()
        loop = self.closed_loop is not None
        return Block(self.event, stimulus, packed[..., 1:1 + d].contiguous(), packed[..., 1 + d].float(),
                     self.labels[stimulus], packed[..., 2 + d:2 + d + v].contiguous() if v else None,
                     packed_floats[..., :r] if r else None, packed[..., -1].bool() if loop else None,
                     packed_floats[..., r:] if loop else None)

    def next_glimpse(self, time: float) -> Glimpse:
        """The next event's glimpses [B, ...], cut on the device from this event's row of the block of draws (a
        closed-loop policy's gazes chosen from it there)."""
        block = self._block
        if block is None or self.event - block.start == len(block.stimulus):
            block = self._block = self._next_block()
        i = self.event - block.start
        idx, gaze = block.stimulus[i], block.gaze[i]
        if self.closed_loop is not None:
            gaze = self.closed_loop.gaze((gaze, block.first[i], block.noise[i]))
        self._last_stimulus = idx
        self.last_view = None if block.view is None else block.view[i]
        if block.view is None:
            data = self.modality.cut(self.store, idx, gaze)
        else:
            data = self.modality.cut(self.store, idx, gaze, self.last_view)
        row = self._block_rows[i]
        glimpse = Glimpse(index=self.event, time=time, data=data, gaze=gaze, stimulus=idx, label=block.label[i],
                          modulator=block.modulator[i], draws=None if block.draws is None else block.draws[i],
                          modulator_host=row[:, 1 + gaze.shape[1]])
        if self.trace is not None:
            self._log(row, gaze, time)
        self.event += 1
        self.time = time
        return glimpse

    def _log(self, row: np.ndarray, gaze: torch.Tensor, time: float) -> None:
        """Log the event to the scan-path trace from its host row (a closed-loop policy's gazes: from the device)."""
        d = gaze.shape[1]
        if self.closed_loop is None:
            gazes = row[:, 1:1 + d]
        else:
            with deliberate("record.scanpath: a closed-loop policy's gazes go to the host"):
                gazes = gaze.cpu().numpy()
        fixation = time - self.time if self.event else time
        self.trace.log(np.arange(self.batch), row[:, 0], gazes, np.full(self.batch, time),
                       np.full(self.batch, fixation))

    def seen_stimuli(self) -> torch.Tensor:
        """The stimuli of the last event [B, ...] as its eyes see them (through their presentations' views)."""
        stimuli = self.store[self._last_stimulus]
        return stimuli if self.last_view is None else self.modality.frame(stimuli, self.last_view)

    def _current(self) -> tuple[list[dict], State]:
        """The streams' states and the eye state as of the last event emitted: the block's draws replayed from its
        start up to that event on copies of the streams (the live streams have drawn the whole block)."""
        if self._block is None or self.event - self._block.start == len(self._block.stimulus):
            return [s.state_dict() for s in self.streams], self._state()
        states, state, observed = self._block_start
        copies = []
        for saved, stream in zip(states, self.streams):
            copy = StimulusStream(stream.items, torch.Generator())
            copy.load_state_dict(saved)
            copies.append(copy)
        for event in range(self._block.start, self.event):
            state = self._draw(copies, state, event, observed or event > self._block.start)[2]
        return [c.state_dict() for c in copies], state

    def state_dict(self) -> dict:
        """Clock and, per logical shard id, its eyes' stimuli, views and draws and its stream (so shards can move
        between ranks)."""
        streams, state = self._current()
        parts = zip(self.shard_ids, streams, *(t.split(self.per_shard) for t in state))
        state = {"event": self.event, "time": self.time,
                 "shards": {s: {"stimulus": st.clone(), "view": v.clone(), "draws": d.clone(), **stream}
                            for s, stream, st, v, d in parts}}
        if hasattr(self.policy, "state_dict"):  # a closed-loop policy's maps (this process's eyes)
            state["policy"] = self.policy.state_dict()
        return state

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
        self._block = self._block_start = None  # the next event draws a new block from here
        if "policy" in state:
            self.policy.load_state_dict(state["policy"])

