"""Closed-loop saccade policies: each eye's next gaze depends on what the network (or the stimulus) showed.

A closed-loop policy names the channels it reads in ``subscribes``; after each event the engine calls
``observe(channels, gaze)`` with the latest tensor of each (``"<area>/activity"`` [B, ...], ``"<area>/loss"``
[B], ``"modulator"`` [B], ``"stimulus"`` [B, C, H, W] or [B, C, T, H, W], ``"gaze"`` [B, D],
``"modulator_host"`` [B] on the host), before the Eye asks for the next gazes. Every policy here keeps, per
eye and gaze-grid cell g,

    value[b, g]       what the source says about g (saliency, the remembered prediction error); NaN: not known
                      yet (a cell not fixated), taken as the mean of the eye's known values,
    inhibition[b, g]  inhibition of return: after each fixation ``inhibition <- decay * inhibition``, then 1 at
                      the fixated cell,

and fixates ``argmax_g v[b, g] - ior_weight * inhibition[b, g] + 1e-6 u_g``, v the value map with its row
scaled to [0, 1] and u uniform (ties broken at random), or, with probability ``mix`` per eye and fixation, where its ``mix_with`` policy (raster, random)
would. The maps are cleared when an eye's stimulus changes (modulator != +1). The first fixation of a
presentation (step 0 of the dwell) comes from ``mix_with``: the eye has not seen the stimulus yet.

The maps live on the device of the channels, so a run on a GPU never waits for the host: the random part of a
fixation (the ``mix_with`` gazes, which eyes take them, the tie-break uniforms u) is drawn on the CPU from the
shard's generator by :meth:`ClosedLoopPolicy.draw`, ahead, in the Eye's blocks of draws, and
:meth:`ClosedLoopPolicy.gaze` makes the choice on the device once the event before has been observed. The
asynchronous Eye, whose clock runs on the host, asks with :meth:`~ClosedLoopPolicy.sample` for the next eyes of
the last observation in batch order (one call per shard) and takes the gazes to the host."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, NamedTuple, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .errors import ConfigError
from .gaze import GazeSpace
from .hostsync import deliberate
from .policies import RandomOptions, RandomPolicy, RasterPolicy, SaccadePolicy
from .registry import POLICIES


@dataclass
class ClosedLoopOptions:
    ior_weight: float = 1.5  #: how strongly a recent fixation discourages a revisit (> 1: the last one always loses)
    ior_decay: float = 0.9  #: per fixation of the eye, the inhibition shrinks by this factor
    mix: float = 0.0  #: per eye and fixation, probability of the ``mix_with`` policy's gaze instead
    mix_with: str = "random"  #: "random" (grid positions) or "raster"

    def validate(self, path: str) -> None:
        if self.ior_weight < 0:
            raise ConfigError(f"{path}.ior_weight: must be >= 0, got {self.ior_weight}")
        if not 0.0 <= self.ior_decay <= 1.0:
            raise ConfigError(f"{path}.ior_decay: must be in [0, 1], got {self.ior_decay}")
        if not 0.0 <= self.mix <= 1.0:
            raise ConfigError(f"{path}.mix: must be in [0, 1], got {self.mix}")
        if self.mix_with not in ("random", "raster"):
            raise ConfigError(f"{path}.mix_with: unknown value {self.mix_with!r}; valid choices: random, raster")


def normalise(v: torch.Tensor) -> torch.Tensor:
    """Each row of ``v`` [B, G] mapped to [0, 1]: (v - min) / (max - min) (0 for a flat row)."""
    lo, hi = v.amin(1, keepdim=True), v.amax(1, keepdim=True)
    return torch.where(hi > lo, (v - lo) / (hi - lo).clamp_min(1e-12), torch.zeros_like(v))


class PolicyDraws(NamedTuple):
    """A closed-loop policy's CPU draws for n eyes and one fixation: ``fallback`` [n, D] long (the ``mix_with``
    policy's gazes), ``first`` [n] bool (take the fallback: a presentation's first fixation, or a ``mix`` draw),
    ``noise`` [n, G] (the tie-break uniforms u; zeros, and nothing drawn, before the first observation)."""

    fallback: torch.Tensor
    first: torch.Tensor
    noise: torch.Tensor


class ClosedLoopPolicy(SaccadePolicy):
    """Base class: the per-eye value and inhibition maps over the gaze grid and the choice rule (module
    docstring). Subclasses set ``subscribes`` and implement :meth:`values` (this observation's value map)."""

    Options = ClosedLoopOptions
    subscribes: tuple[str, ...] = ("modulator",)

    def __init__(self, options=None) -> None:
        super().__init__(options or self.Options())
        self.base = RasterPolicy() if self.options.mix_with == "raster" else RandomPolicy(RandomOptions())
        self.value: torch.Tensor | None = None  #: [B, G] on the channels' device, one row per eye of the batch
        self.inhibition: torch.Tensor | None = None  #: [B, G]
        self.batch = 0
        self._rows: torch.Tensor | None = None  #: the eyes of the last observation, in order (None: all)
        self._row = 0

    def values(self, channels: Mapping[str, torch.Tensor], hit: torch.Tensor, space: GazeSpace,
               old: torch.Tensor, fresh: torch.Tensor) -> torch.Tensor:
        """The value map [n, G] of the n observed eyes after this observation (``hit`` [n, G] true at each eye's
        fixated cell, none off the grid; ``old`` their map before it, cleared (NaN) for the eyes on a new
        stimulus, ``fresh`` [n])."""
        raise NotImplementedError

    def bind(self, space: GazeSpace, batch: int = 0, device: torch.device | str = "cpu") -> None:
        """Called by the Eye with the modality's gaze space, its number of eyes and the device of its stimuli,
        before the first observation; the policy keeps the grid there."""
        self.space = GazeSpace(space.grid.to(device), space.high.to(device))
        self.high = tuple(space.high.tolist())  #: the space's maxima on the host (glimpse boxes)
        self.batch = batch

    @property
    def observed(self) -> bool:
        """Whether the maps exist (an event has been observed): before that, every gaze is the fallback."""
        return self.value is not None

    def observe(self, channels: Mapping[str, torch.Tensor], gaze: torch.Tensor) -> None:
        """Update the maps of the event's eyes (``channels["eyes"]`` [n] with asynchronous eyes; else all, in
        order) from the latest channels and their gazes [n, D], on their device: no value goes to the host."""
        space, eyes = self.space, channels.get("eyes")
        cell = space.cells(gaze.detach())
        if self.value is None:
            b = self.batch or len(gaze)
            self.value = torch.full((b, space.size), math.nan, device=cell.device)
            self.inhibition = torch.zeros(b, space.size, device=cell.device)
        rows = slice(None) if eyes is None else eyes
        fresh = (channels["modulator"] != 1)[:, None]
        old = self.value[rows].masked_fill(fresh, math.nan)
        hit = (cell[:, None] == torch.arange(space.size, device=cell.device)) & (cell >= 0)[:, None]
        inhibition = (self.inhibition[rows].masked_fill(fresh, 0.0) * self.options.ior_decay).masked_fill(hit, 1.0)
        detached = {k: v.detach() if isinstance(v, torch.Tensor) else v for k, v in channels.items()}
        self.value[rows], self.inhibition[rows] = self.values(detached, hit, space, old, fresh[:, 0]), inhibition
        self._rows, self._row = eyes, 0

    def draw(self, step, batch: int, space: GazeSpace, generator: torch.Generator, observed: bool) -> PolicyDraws:
        """This fixation's CPU draws for ``batch`` eyes at dwell ``step`` (an int, or [batch] per eye), made from
        ``generator`` in a fixed order: the fallback gazes, then (once ``observed``) u, then the mix draws."""
        fallback = self.base.sample(step, batch, space, generator)
        first = (torch.as_tensor(step) == 0).expand(batch)
        if not observed:
            return PolicyDraws(fallback, torch.ones(batch, dtype=torch.bool), torch.zeros(batch, space.size))
        noise = torch.rand(batch, space.size, generator=generator)
        if self.options.mix > 0:
            first = first | (torch.rand(batch, generator=generator) < self.options.mix)
        return PolicyDraws(fallback, first, noise)

    def gaze(self, draws: tuple[torch.Tensor, ...], rows: torch.Tensor | slice = slice(None)) -> torch.Tensor:
        """The gazes [n, D] of eyes ``rows`` (draws on the maps' device): the fallback where ``first``, else the
        grid point ``argmax_g normalise(v)[g] - ior_weight * inhibition[g] + 1e-6 u[g]`` (v: the value row, its
        unknown cells at the row's known mean)."""
        fallback, first, noise = draws
        if self.value is None:
            return fallback
        value = self.value[rows]
        known = ~value.isnan()
        mean = value.nan_to_num(0.0).sum(1, keepdim=True) / known.sum(1, keepdim=True).clamp_min(1)
        score = normalise(torch.where(known, value, mean)) - self.options.ior_weight * self.inhibition[rows]
        chosen = self.space.grid[(score + 1e-6 * noise).argmax(1)]
        return torch.where(first.view(-1, 1), fallback, chosen)

    def sample(self, step, batch, space, generator):
        """``batch`` gazes for the next eyes of the last observation in batch order (one call per shard), on the
        maps' device."""
        draws = self.draw(step, batch, space, generator, self.observed)
        if self.value is None:
            return draws.fallback
        device = self.value.device
        order = torch.arange(len(self.value), device=device) if self._rows is None else self._rows
        rows, self._row = order[self._row:self._row + batch], (self._row + batch) % len(order)
        return self.gaze(PolicyDraws(*(t.to(device) for t in draws)), rows)

    def state_dict(self) -> dict:
        return {"value": self.value, "inhibition": self.inhibition, "rows": self._rows, "row": self._row}

    def load_state_dict(self, state: dict) -> None:
        device = self.space.grid.device
        self.value, self.inhibition, self._rows = (None if t is None else t.to(device)
                                                   for t in (state["value"], state["inhibition"], state["rows"]))
        self._row = state["row"]


@POLICIES.register("ior")
class InhibitionOfReturnPolicy(ClosedLoopPolicy):
    """Inhibition of return alone: fixate a cell not visited recently (ties at random)."""

    def values(self, channels, hit, space, old, fresh):
        return old


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """x [N, C, H, W] convolved with a separable Gaussian of sd ``sigma`` pixels (reflected borders)."""
    radius = max(1, int(math.ceil(2.5 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    k = torch.exp(-t ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    c = x.shape[1]
    pad_h, pad_w = min(radius, x.shape[-2] - 1), min(radius, x.shape[-1] - 1)
    x = F.pad(x, (pad_w, pad_w, 0, 0), mode="reflect" if pad_w else "replicate")
    x = F.conv2d(x, k[radius - pad_w:radius + pad_w + 1].view(1, 1, 1, -1).expand(c, 1, 1, -1).contiguous(), groups=c)
    x = F.pad(x, (0, 0, pad_h, pad_h), mode="reflect" if pad_h else "replicate")
    return F.conv2d(x, k[radius - pad_h:radius + pad_h + 1].view(1, 1, -1, 1).expand(c, 1, -1, 1).contiguous(), groups=c)


def itti_normalise(m: torch.Tensor) -> torch.Tensor:
    """Itti-Koch's N(.) on maps [N, K, H, W]: each map scaled to [0, 1], then weighted by (1 - mean)^2, so a
    map with one strong peak counts more than one with many similar ones."""
    lo = m.flatten(2).amin(2)[..., None, None]
    hi = m.flatten(2).amax(2)[..., None, None]
    m = (m - lo) / (hi - lo).clamp_min(1e-12)
    return m * (1 - m.flatten(2).mean(2))[..., None, None] ** 2


#: centre-surround pairs (centre sd, surround sd) in pixels
SCALES = ((1.0, 4.0), (2.0, 8.0))


def saliency_map(image: torch.Tensor) -> torch.Tensor:
    """Itti-Koch bottom-up saliency of images [N, C, H, W] -> [N, H, W]: feature maps F = intensity
    (channel mean), colour opponency (R - G, B - (R + G) / 2, colour only) and orientation energy
    |cos(t) d/dx I + sin(t) d/dy I| for t in 0, 45, 90, 135 degrees; centre-surround contrast
    |G_c * F - G_s * F| at each pair of :data:`SCALES`; the mean over features of N(contrast). A constant image
    has saliency 0 everywhere."""
    intensity = image.mean(1, keepdim=True)
    features = [intensity]
    if image.shape[1] == 3:
        r, g, b = image[:, :1], image[:, 1:2], image[:, 2:3]
        features += [r - g, b - (r + g) / 2]
    gy, gx = torch.gradient(intensity, dim=(2, 3))
    features += [(math.cos(t) * gx + math.sin(t) * gy).abs() for t in (0.0, math.pi / 4, math.pi / 2, 3 * math.pi / 4)]
    f = torch.cat(features, 1)
    contrast = torch.cat([(gaussian_blur(f, c) - gaussian_blur(f, s)).abs() for c, s in SCALES], 1)
    return itti_normalise(contrast).mean(1)


def stimulus_saliency(stimulus: torch.Tensor) -> torch.Tensor:
    """Saliency of images [N, C, H, W] -> [N, H, W], or of clips [N, C, T, H, W] -> [N, T, H, W] (each frame's,
    plus Itti's flicker channel: the centre-surround contrast of |I_t - I_(t-1)|)."""
    if stimulus.dim() == 4:
        return saliency_map(stimulus)
    n, c, t, h, w = stimulus.shape
    frames = saliency_map(stimulus.transpose(1, 2).reshape(n * t, c, h, w)).view(n, t, h, w)
    intensity = stimulus.mean(1)
    flicker = torch.cat([torch.zeros_like(intensity[:, :1]), (intensity[:, 1:] - intensity[:, :-1]).abs()], 1)
    flick = saliency_map(flicker.reshape(n * t, 1, h, w)).view(n, t, h, w)
    return (frames + flick) / 2


def cell_means(saliency: torch.Tensor, grid: torch.Tensor, high: Sequence[int]) -> torch.Tensor:
    """[N, G]: the mean of ``saliency`` [N, *S] over each point of ``grid`` [G, D]'s glimpse box (its extent:
    S - ``high``, the gaze space's inclusive maxima as host ints)."""
    d = grid.shape[1]
    box = [int(s - h) for s, h in zip(saliency.shape[-d:], high)]
    pool = F.avg_pool2d if d == 2 else F.avg_pool3d
    means = pool(saliency[:, None], box, stride=1)[:, 0]  # [N, *(high + 1)]
    return means[(slice(None), *grid.t())]


#: the deliberate copy of the saliency policy (:mod:`saccade_sim.hostsync`), at the events where some eyes start a
#: presentation and others do not
SALIENCY_COPY = "saliency policy: the eyes that start a presentation, known on the host, to the device"


@dataclass
class SaliencyOptions(ClosedLoopOptions):
    source: str = "stimulus"  #: "stimulus" (Itti-Koch on the image) or "<area>/activity" (contrast of the area's output)

    def validate(self, path: str) -> None:
        super().validate(path)
        if self.source != "stimulus" and not self.source.endswith("/activity"):
            raise ConfigError(f"{path}.source: expected \"stimulus\" or \"<area>/activity\", got {self.source!r}")


@POLICIES.register("saliency")
class SaliencyPolicy(ClosedLoopPolicy):
    """Bottom-up saliency (Itti-Koch feature contrast) on the stimulus, or on an area's activity, with IOR."""

    Options = SaliencyOptions

    @property
    def subscribes(self) -> tuple[str, ...]:
        host = ("modulator_host",) if self.options.source == "stimulus" else ()  # whose presentation starts
        return (self.options.source, "modulator", *host)

    def values(self, channels, hit, space, old, fresh):
        if self.options.source == "stimulus":  # a presentation's saliency, computed at its first event
            return self._presentation_saliency(channels, old, fresh)
        # an area's activity [B, C, h, w] at the fixated cell: its centre-surround contrast, remembered per cell
        a = channels[self.options.source].float()
        contrast = a.flatten(2).std(2).mean(1) if a.dim() > 2 else a.std(1)
        return remember(old, hit, contrast)

    def _presentation_saliency(self, channels, old: torch.Tensor, fresh: torch.Tensor) -> torch.Tensor:
        """``old`` with the rows of the eyes that start a presentation set to their stimulus's cell saliencies: of
        those eyes only, where the Eye says on the host which they are (``"modulator_host"``), else of every eye."""
        stimulus, starts = channels["stimulus"], channels.get("modulator_host")
        if starts is None:
            return torch.where(fresh[:, None], self._saliency(stimulus), old)
        rows = np.flatnonzero(starts != 1)
        if len(rows) in (0, len(starts)):
            return old if not len(rows) else self._saliency(stimulus)
        with deliberate(SALIENCY_COPY):
            index = torch.from_numpy(rows)
            index = (index.pin_memory() if old.is_cuda else index).to(old.device, non_blocking=True)
        return old.index_copy(0, index, self._saliency(stimulus.index_select(0, index)).to(old.dtype))

    def _saliency(self, stimulus: torch.Tensor) -> torch.Tensor:
        return cell_means(stimulus_saliency(stimulus.float()), self.space.grid, self.high)


def remember(old: torch.Tensor, hit: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
    """The map ``old`` [B, G] (NaN: not visited) with each eye's fixated cell (``hit`` [B, G]) set to its
    ``score`` [B]; NaN scores and off-grid gazes (no hit) leave it as it was."""
    return torch.where(hit & ~score.isnan()[:, None], score[:, None].to(old.dtype), old)


@dataclass
class SurpriseOptions(ClosedLoopOptions):
    channel: str = "layer1/loss"  #: the per-eye error [B] to seek: "<area>/loss" (Rule.eye_loss; CLAPP: its hinges)

    def validate(self, path: str) -> None:
        super().validate(path)
        if "/" not in self.channel:
            raise ConfigError(f"{path}.channel: expected \"<area>/loss\" or another \"<area>/<quantity>\" channel "
                              f"of one value per eye, got {self.channel!r}")


@POLICIES.register("surprise")
class SurprisePolicy(ClosedLoopPolicy):
    """Look where the layer's prediction error was largest: each eye remembers the error it met at each cell
    of its stimulus (cells not visited yet count as the mean), with IOR. The error is the area's local loss per
    eye (``Rule.eye_loss``; CLAPP: the hinge terms of the pairs whose context the eye holds, 0 where it has none); a
    rule without one (Oja) leaves the map empty, so the policy is inhibition of return alone."""

    Options = SurpriseOptions

    @property
    def subscribes(self) -> tuple[str, ...]:
        return (self.options.channel, "modulator")

    def values(self, channels, hit, space, old, fresh):
        error = channels.get(self.options.channel)  # absent: the area's rule has no per-eye loss (yet)
        return old if error is None else remember(old, hit, error.float())

