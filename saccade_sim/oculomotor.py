"""Eyes that move like eyes (``[eye.motor]``): per-eye fixation and saccade timing, fixational drift and
microsaccades, and the scan-path trace.

With ``timing = "gamma"`` each eye b runs on its own clock. Its k-th fixation lasts

    F ~ Gamma(shape, scale = eye.fixation_ms / shape)          (mean eye.fixation_ms; human scene viewing ~250-330)

and the saccade to the next one (the main sequence, Carpenter 1988; Baloh et al. 1975)

    S = saccade_intercept_ms + saccade_slope_ms * A,   A = |gaze_(k+1) - gaze_k| / pixels_per_degree  (degrees)

so the fixation ends at ``E_(k+1) = E_k + S + F_(k+1)``. The glimpse of a fixation is taken at its end (as
the lockstep Eye emits fixation k at k * fixation_ms). The engine gathers the eyes whose fixations end in one
time bin ``[j w, (j + 1) w)`` (w = ``bin_ms`` <= ``saccade_intercept_ms``, so an eye ends at most one
fixation per bin) into one batched event at time ``(j + 1) w``; empty bins are skipped, so events are
time-ordered and every fixation is emitted exactly once. Saccadic suppression: an eye in flight emits
nothing and so gives no learning signal; its next glimpse comes when it has landed and fixated.

Fixational eye movements: ``drift_px`` > 0 moves the gaze during a fixation as Brownian motion, the
glimpse taken at ``gaze + round(N(0, drift_px^2 F / 1000 ms))`` per coordinate (clamped in bounds);
``microsaccade_prob`` is the probability that the next movement is a microsaccade (a step of 1 ..
``microsaccade_px`` pixels per spatial coordinate, random sign, same stimulus) instead of the policy's saccade,
its duration from the same main sequence.

All draws are made on the CPU from each logical shard's seeded generator, eye after eye, so a resumed run
draws the same (:meth:`AsynchronousEye.state_dict`)."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from .errors import ConfigError
from .specs import MotorConfig


def gamma_draws(n: int, shape: float, scale: float, generator: torch.Generator) -> torch.Tensor:
    """[n] float64 Gamma(shape, scale) draws from ``generator`` (Marsaglia and Tsang 2000: with d = k - 1/3,
    c = 1 / sqrt(9 d), x ~ N(0, 1), v = (1 + c x)^3, u ~ U(0, 1), accept d v when v > 0 and
    log u < x^2 / 2 + d - d v + d log v; for k < 1, Gamma(k + 1) u^(1/k))."""
    k = shape + 1.0 if shape < 1 else shape
    d = k - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    out = torch.empty(n, dtype=torch.float64)
    todo = torch.arange(n)
    while len(todo):
        x = torch.randn(len(todo), generator=generator, dtype=torch.float64)
        u = torch.rand(len(todo), generator=generator, dtype=torch.float64)
        v = (1 + c * x) ** 3
        ok = (v > 0) & (u.log() < x * x / 2 + d - d * v + d * v.clamp_min(1e-300).log())
        out[todo[ok]] = d * v[ok]
        todo = todo[~ok]
    if shape < 1:
        out *= torch.rand(n, generator=generator, dtype=torch.float64) ** (1.0 / shape)
    return out * scale


def saccade_ms(amplitude_px: torch.Tensor, motor: MotorConfig) -> torch.Tensor:
    """The main sequence: ``intercept + slope * amplitude_px / pixels_per_degree`` ms."""
    return motor.saccade_intercept_ms + motor.saccade_slope_ms * amplitude_px / motor.pixels_per_degree


def amplitude(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distance in pixels between gazes [n, D] over their spatial (last two) coordinates."""
    return (a[:, -2:] - b[:, -2:]).double().norm(dim=1)


class ScanpathTrace:
    """The newest ``max_len`` fixations of every eye: eye, stimulus, gaze [D], the fixation's end (ms), its
    duration, the duration and amplitude (pixels, spatial coordinates) of the saccade before it (NaN for an
    eye's first fixation) and whether that was a microsaccade. Host-side arrays: the Eye logs what it drew
    on the CPU, so recording costs no device transfer."""

    FIELDS = ("eye", "stimulus", "end_ms", "fixation_ms", "saccade_ms", "amplitude_px", "micro")

    def __init__(self, max_len: int, dims: int) -> None:
        self.max_len = max_len
        self.data = {name: np.zeros(max_len, np.float64) for name in self.FIELDS}
        self.data["gaze"] = np.zeros((max_len, dims), np.float64)
        self.count = 0
        self.last_gaze: dict[int, np.ndarray] = {}

    def log(self, eyes: np.ndarray, stimulus: np.ndarray, gaze: np.ndarray, end_ms: np.ndarray,
            fixation_ms: np.ndarray, saccade: np.ndarray | None = None, micro: np.ndarray | None = None) -> None:
        """Append the fixations of one event (one row per eye); the amplitude is measured from each eye's
        previous logged gaze."""
        n = len(eyes)
        previous = np.array([self.last_gaze.get(int(e), np.full(gaze.shape[1], np.nan)) for e in eyes])
        amp = np.sqrt(((gaze[:, -2:] - previous[:, -2:]) ** 2).sum(1))
        rows = {"eye": eyes, "stimulus": stimulus, "end_ms": end_ms, "fixation_ms": fixation_ms,
                "saccade_ms": np.where(np.isnan(amp), np.nan, 0.0) if saccade is None else saccade,
                "amplitude_px": amp, "micro": np.zeros(n) if micro is None else micro, "gaze": gaze}
        slots = (self.count + np.arange(n)) % self.max_len
        for name, values in rows.items():
            self.data[name][slots] = values
        self.count += n
        for e, g in zip(eyes, gaze):
            self.last_gaze[int(e)] = np.asarray(g, np.float64)

    def arrays(self) -> dict[str, np.ndarray]:
        """The kept fixations, oldest first."""
        n = min(self.count, self.max_len)
        order = (self.count + np.arange(n)) % self.max_len if self.count > self.max_len else np.arange(n)
        return {name: values[order] for name, values in self.data.items()}

    def state_dict(self) -> dict:
        eyes = sorted(self.last_gaze)
        return {"count": self.count, **{k: torch.from_numpy(v.copy()) for k, v in self.data.items()},
                "last_eyes": torch.tensor(eyes, dtype=torch.long),
                "last_gaze": torch.from_numpy(np.array([self.last_gaze[e] for e in eyes]).reshape(len(eyes), -1))}

    def load_state_dict(self, state: dict) -> None:
        self.count = state["count"]
        for name in self.data:
            self.data[name] = state[name].numpy().copy()
        self.last_gaze = {int(e): g.numpy().copy() for e, g in zip(state["last_eyes"], state["last_gaze"])}


def check_asynchronous(motor: MotorConfig, monitors: Sequence, edges: Sequence = (),
                       where: str = "eye.motor.timing") -> None:
    """ConfigErrors for what asynchronous eyes cannot serve: monitors of per-eye quantities and top-down or lateral
    edges (a dendrite holds the source's last output, whose eyes are another event's: both change shape from
    event to event)."""
    if motor.timing == "lockstep":
        return
    for i, edge in enumerate(edges):
        if edge.kind != "feedforward":
            raise ConfigError(f"network.edges[{i}]: a {edge.kind} edge delivers its source's output of an earlier "
                              f"event, which held other eyes than the next one under asynchronous eyes ({where} = "
                              f"{motor.timing!r}); use lockstep eyes with dendritic edges")
    for i, spec in enumerate(monitors):
        if spec.quantity not in ("weights", "loss"):
            raise ConfigError(f"record.monitors[{i}].quantity: {spec.quantity!r} has one row per eye of the event, "
                              f"and asynchronous eyes ({where} = {motor.timing!r}) vary in number per event; record "
                              "weights or loss, or the scan path (record.scanpath)")
