"""The asynchronous Eye (``eye.motor.timing = "gamma"``): B eyes on their own clocks, gathered per time bin
into batched events (timing model: :mod:`saccade_sim.oculomotor`).

Per eye it keeps the fixation it will emit next (stimulus, gaze, view, draws, modulator, its end time, its
duration, the saccade before it); an event emits the eyes whose fixations end in its bin, as a Glimpse of
those eyes only (``Glimpse.eyes``), and those eyes then draw their next fixation, after a closed-loop policy
has observed the event (lazily, at :meth:`next_time`). Draws come from each logical shard's generator, the
shard's eyes in order, exactly as many per eye and fixation whatever the other eyes do.

The clock and the draws live on the host (CPU tensors, in a device run too: :func:`~saccade_sim.hostsync.host_side`);
an event's rows reach the device in one copy of its integers and one of its floats (from pinned memory on a GPU,
asynchronously). A closed-loop policy's choice, made on the device, comes back to the
host clock: one wait per event, the price of eyes whose timing depends on where they look."""
from __future__ import annotations

import math

import torch

from .events import Glimpse
from .eye import Eye
from .hostsync import deliberate, host_side
from .oculomotor import ScanpathTrace, amplitude, gamma_draws, saccade_ms

#: the deliberate sections of an asynchronous run (:mod:`saccade_sim.hostsync`)
HOST_CLOCK = "asynchronous eyes: the host clock (host tensors in a device run too)"
EVENT_COPY = "asynchronous eyes: one copy per event of the emitted eyes' integers, one of their floats"
CLOSED_LOOP = "asynchronous eyes: a closed-loop policy's gazes go to the host clock"

#: per-eye state saved in a checkpoint (besides the stream of each shard)
EYE_STATE = ("stimulus", "view", "draws", "gaze", "count", "end", "fixation", "saccade", "micro", "modulator",
             "pending")


class AsynchronousEye(Eye):
    """Eyes with gamma fixation durations and main-sequence saccades; one event per non-empty time bin."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        cfg = args[4] if len(args) > 4 else kwargs["cfg"]
        self.motor, self.mean_fixation_ms = cfg.motor, cfg.fixation_ms
        b, d = self.batch, self.modality.space.grid.shape[1]
        self.gaze = torch.zeros(b, d, dtype=torch.long)
        self.count = torch.zeros(b, dtype=torch.long)  #: fixations drawn per eye
        self.end = torch.zeros(b, dtype=torch.float64)  #: when each eye's next fixation ends (ms)
        self.fixation = torch.zeros(b, dtype=torch.float64)  #: its duration
        self.saccade = torch.full((b,), math.nan, dtype=torch.float64)  #: the saccade before it (NaN: none)
        self.micro = torch.zeros(b, dtype=torch.bool)  #: whether that was a microsaccade
        self.modulator = torch.zeros(b)
        self.pending = torch.ones(b, dtype=torch.bool)  #: eyes whose next fixation is still to be drawn
        self.emitted = 0  #: fixations emitted (over all events)
        self.trace: ScanpathTrace | None = None

    def _advance(self, eyes: torch.Tensor) -> None:
        """Draw the next fixation of ``eyes`` (sorted), shard after shard from its generator."""
        m, space = self.motor, self.modality.space
        for j, stream in enumerate(self.streams):
            own = eyes[(eyes >= j * self.per_shard) & (eyes < (j + 1) * self.per_shard)]
            n, gen = len(own), stream.generator
            if not n:
                continue
            first, step = self.count[own] == 0, self.count[own] % self.dwell
            fresh = step == 0
            if self.jump_prob > 0:
                fresh |= torch.rand(n, generator=gen) < self.jump_prob
            stimulus, k = self.stimulus[own].clone(), int(fresh.sum())
            if k:  # new presentations: stimuli, views and draws
                stimulus[fresh] = stream.take(k)
                if self.view.shape[1]:
                    self.view[own[fresh]] = self.modality.sample_view(k, gen)
                if self.draws.shape[1]:
                    self.draws[own[fresh]] = torch.rand(k, self.draws.shape[1], generator=gen)
            if self.closed_loop is None:
                gaze = self.policy.sample(step, n, space, gen).clone()
            else:
                with deliberate(CLOSED_LOOP):
                    gaze = self.policy.sample(step, n, space, gen).cpu()
            old = self.gaze[own]
            if m.microsaccade_prob > 0:
                micro = (torch.rand(n, generator=gen) < m.microsaccade_prob) & ~fresh
                size = torch.randint(1, m.microsaccade_px + 1, (n, 2), generator=gen)
                sign = torch.randint(0, 2, (n, 2), generator=gen) * 2 - 1
                moved = old.clone()
                moved[:, -2:] += size * sign
                gaze = torch.where(micro[:, None], moved, gaze)
            else:
                micro = torch.zeros(n, dtype=torch.bool)
            fixation = gamma_draws(n, m.fixation_shape, self.mean_fixation_ms / m.fixation_shape, gen)
            if m.drift_px > 0:
                drift = torch.randn(n, 2, generator=gen, dtype=torch.float64) * m.drift_px * (fixation[:, None] / 1000).sqrt()
                gaze[:, -2:] += drift.round().long()
            gaze = torch.minimum(gaze.clamp_min(0), space.high)
            saccade = torch.where(first, math.nan, saccade_ms(amplitude(gaze, old), m))
            self.end[own] = torch.where(first, fixation, self.end[own] + saccade.nan_to_num(0.0) + fixation)
            self.modulator[own] = torch.where(first, 0.0, (stimulus == self.stimulus[own]).float() * 2 - 1)
            self.stimulus[own], self.gaze[own], self.count[own] = stimulus, gaze, self.count[own] + 1
            self.fixation[own], self.saccade[own], self.micro[own] = fixation, saccade, micro
        self.pending[eyes] = False

    def next_time(self) -> float:
        """The end of the next non-empty time bin: ``(floor(min_b E_b / w) + 1) w`` ms."""
        with host_side(HOST_CLOCK):
            if self.pending.any():
                self._advance(self.pending.nonzero()[:, 0])
            w = self.motor.bin_ms
            self._bin_end = (math.floor(float(self.end.min()) / w) + 1) * w
        return self._bin_end

    def next_glimpse(self, time: float) -> Glimpse:
        """The glimpses [n, ...] of the eyes whose fixations end in the bin :meth:`next_time` gave (``time``: the
        event's clock reading, that bin's end up to rounding)."""
        end = self.next_time()
        with host_side(HOST_CLOCK):
            eyes = (self.end < end).nonzero()[:, 0]
            ints = torch.cat([eyes[:, None], self.stimulus[eyes, None], self.gaze[eyes], self.view[eyes]], 1)
            floats = torch.cat([self.modulator[eyes, None], self.draws[eyes]], 1)
            if self.trace is not None:
                self.trace.log(eyes.numpy(), self.stimulus[eyes].numpy(), self.gaze[eyes].numpy(),
                               self.end[eyes].numpy(), self.fixation[eyes].numpy(), self.saccade[eyes].numpy(),
                               self.micro[eyes].numpy())
            self.pending[eyes] = True
            eyes_host, modulator_host = eyes.numpy(), self.modulator[eyes].numpy()
        with deliberate(EVENT_COPY):
            if self.device.type == "cuda":
                ints, floats = ints.pin_memory(), floats.pin_memory()
            ints, floats = ints.to(self.device, non_blocking=True), floats.to(self.device, non_blocking=True)
        d = self.gaze.shape[1]
        idx, gaze = ints[:, 1], ints[:, 2:2 + d]
        self._last_stimulus = idx
        self.last_view = ints[:, 2 + d:] if self.view.shape[1] else None
        data = self.modality.cut(self.store, idx, gaze, self.last_view)
        glimpse = Glimpse(index=self.event, time=time, data=data, gaze=gaze, stimulus=idx, label=self.labels[idx],
                          modulator=floats[:, 0], draws=floats[:, 1:] if self.draws.shape[1] else None,
                          eyes=ints[:, 0], eyes_host=eyes_host, modulator_host=modulator_host)
        self.event += 1
        self.time = time
        self.emitted += len(eyes_host)
        return glimpse

    def state_dict(self) -> dict:
        shards = {}
        for j, (s, stream) in enumerate(zip(self.shard_ids, self.streams)):
            rows = slice(j * self.per_shard, (j + 1) * self.per_shard)
            shards[s] = {**stream.state_dict(), **{name: getattr(self, name)[rows].clone() for name in EYE_STATE}}
        state = {"event": self.event, "time": self.time, "emitted": self.emitted, "shards": shards}
        if hasattr(self.policy, "state_dict"):
            state["policy"] = self.policy.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)  # clock, streams, stimuli, views, draws, the policy's maps
        self.emitted = state["emitted"]
        for name in EYE_STATE:
            setattr(self, name, torch.cat([state["shards"][s][name] for s in self.shard_ids]).clone())
