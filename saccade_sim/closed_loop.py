"""Closed-loop saccade policies: each eye's next gaze depends on what the network (or the stimulus) showed.

A closed-loop policy names the channels it reads in ``subscribes``; after each event the engine calls
``observe(channels, gaze)`` with the latest tensor of each (``"<area>/activity"`` [B, ...], ``"<area>/loss"``
[B], ``"modulator"`` [B], ``"stimulus"`` [B, C, H, W] or [B, C, T, H, W], ``"gaze"`` [B, D]), before the
Eye asks for the next gazes. Every policy here keeps, per eye and gaze-grid cell g,

    value[b, g]       what the source says about g (saliency, the remembered prediction error); NaN: not known
                      yet (a cell not fixated), taken as the mean of the eye's known values,
    inhibition[b, g]  inhibition of return: after each fixation ``inhibition <- decay * inhibition``, then 1 at
                      the fixated cell,

and fixates ``argmax_g v[b, g] - ior_weight * inhibition[b, g] + 1e-6 u_g``, v the value map with its row
scaled to [0, 1] and u uniform (ties broken at random), or, with probability ``mix`` per eye and fixation, where its ``mix_with`` policy (raster, random)
would. The maps are cleared when an eye's stimulus changes (modulator != +1). The first fixation of a
presentation (step 0 of the dwell) comes from ``mix_with``: the eye has not seen the stimulus yet.

The Eye asks for the gazes of the eyes of the last event in batch order (one ``sample`` call per shard); a
policy answers with the rows of its last observation in that order (``_rows``, ``_row``)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

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


class ClosedLoopPolicy(SaccadePolicy):
    """Base class: the per-eye value and inhibition maps over the gaze grid and the choice rule (module
    docstring). Subclasses set ``subscribes`` and implement :meth:`values` (this observation's value map)."""

    Options = ClosedLoopOptions
    subscribes: tuple[str, ...] = ("modulator",)

    def __init__(self, options=None) -> None:
        super().__init__(options or self.Options())
        self.base = RasterPolicy() if self.options.mix_with == "raster" else RandomPolicy(RandomOptions())
        self.value: torch.Tensor | None = None  #: [B, G] on the CPU, one row per eye of the batch
        self.inhibition: torch.Tensor | None = None  #: [B, G]
        self.batch = 0
        self._rows = torch.zeros(0, dtype=torch.long)  #: the eyes of the last observation, in order
        self._row = 0

    def values(self, channels: Mapping[str, torch.Tensor], cell: torch.Tensor, space: GazeSpace,
               old: torch.Tensor, fresh: torch.Tensor) -> torch.Tensor:
        """The value map [n, G] of the n observed eyes after this observation (``cell`` [n] the fixated cells,
        -1 off the grid; ``old`` their map before it, cleared (NaN) for the eyes on a new stimulus, ``fresh`` [n])."""
        raise NotImplementedError

    def bind(self, space: GazeSpace, batch: int = 0) -> None:
        """Called by the Eye with the modality's gaze space and its number of eyes before the first observation."""
        self.space, self.batch = space, batch

    def observe(self, channels: Mapping[str, torch.Tensor], gaze: torch.Tensor) -> None:
        """Update the maps of the event's eyes (``channels["eyes"]`` [n] with asynchronous eyes; else all, in
        order) from the latest channels and their gazes [n, D]."""
        space = self.space
        with deliberate("closed-loop policy: the Eye draws gazes on the CPU, so the event's channels go there"):
            cpu = {k: v.detach().cpu() for k, v in channels.items()}
            gaze = gaze.detach().cpu()
        cell = space.cells(gaze)
        eyes = cpu["eyes"] if "eyes" in cpu else torch.arange(len(gaze))
        if self.value is None:
            b = max(self.batch, int(eyes.max()) + 1)
            self.value, self.inhibition = torch.full((b, space.size), math.nan), torch.zeros(b, space.size)
        fresh = (cpu["modulator"] != 1)[:, None]
        old = self.value[eyes].masked_fill(fresh, math.nan)
        inhibition = self.inhibition[eyes].masked_fill(fresh, 0.0) * self.options.ior_decay
        on_grid = cell >= 0
        inhibition[on_grid.nonzero()[:, 0], cell[on_grid]] = 1.0
        self.value[eyes], self.inhibition[eyes] = self.values(cpu, cell, space, old, fresh[:, 0]), inhibition
        self._rows, self._row = eyes, 0

    def choose(self, rows: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """[n] grid cells for eyes ``rows``: argmax of value - ior_weight * inhibition, ties broken by the generator."""
        value = self.value[rows]
        known = ~value.isnan()
        mean = value.nan_to_num(0.0).sum(1, keepdim=True) / known.sum(1, keepdim=True).clamp_min(1)
        score = normalise(torch.where(known, value, mean)) - self.options.ior_weight * self.inhibition[rows]
        return (score + 1e-6 * torch.rand(score.shape, generator=generator)).argmax(1)

    def sample(self, step, batch, space, generator):
        fallback = self.base.sample(step, batch, space, generator)
        if self.value is None:
            return fallback
        rows = self._rows[self._row:self._row + batch]
        self._row = (self._row + batch) % max(len(self._rows), 1)
        gaze = space.grid[self.choose(rows, generator)]
        first = torch.as_tensor(step) == 0  # a presentation's first fixation (one step, or one per eye)
        if self.options.mix > 0:
            first = first | (torch.rand(batch, generator=generator) < self.options.mix)
        return torch.where(first.view(-1, 1), fallback, gaze)

    def state_dict(self) -> dict:
        return {"value": self.value, "inhibition": self.inhibition, "rows": self._rows, "row": self._row}

    def load_state_dict(self, state: dict) -> None:
        self.value, self.inhibition = state["value"], state["inhibition"]
        self._rows, self._row = state["rows"], state["row"]


@POLICIES.register("ior")
class InhibitionOfReturnPolicy(ClosedLoopPolicy):
    """Inhibition of return alone: fixate a cell not visited recently (ties at random)."""

    def values(self, channels, cell, space, old, fresh):
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


def cell_means(saliency: torch.Tensor, space: GazeSpace) -> torch.Tensor:
    """[N, G]: the mean of ``saliency`` [N, *S] over each grid point's glimpse box (its extent: S - high)."""
    d = space.grid.shape[1]
    box = [int(s - h) for s, h in zip(saliency.shape[-d:], space.high.tolist())]
    pool = F.avg_pool2d if d == 2 else F.avg_pool3d
    means = pool(saliency[:, None], box, stride=1)[:, 0]  # [N, *(high + 1)]
    return means[(slice(None), *space.grid.t())]


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
        return (self.options.source, "modulator")

    def values(self, channels, cell, space, old, fresh):
        if self.options.source == "stimulus":  # a presentation's saliency is computed once, at its first event
            new = old.clone()
            if fresh.any():
                new[fresh] = cell_means(stimulus_saliency(channels["stimulus"][fresh].float()), space)
            return new
        # an area's activity [B, C, h, w] at the fixated cell: its centre-surround contrast, remembered per cell
        a = channels[self.options.source].float()
        contrast = a.flatten(2).std(2).mean(1) if a.dim() > 2 else a.std(1)
        return remember(old, cell, contrast)


def remember(old: torch.Tensor, cell: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
    """The map ``old`` [B, G] (NaN: not visited) with each eye's fixated cell set to its ``score`` [B]; NaN
    scores and off-grid cells leave it as it was."""
    new = old.clone()
    ok = (cell >= 0) & ~score.isnan()
    new[ok.nonzero()[:, 0], cell[ok]] = score[ok].to(new.dtype)
    return new


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
    eye (``Rule.eye_loss``; CLAPP: the hinge terms of the pairs whose context the eye holds, 0 where it has none)."""

    Options = SurpriseOptions

    @property
    def subscribes(self) -> tuple[str, ...]:
        return (self.options.channel, "modulator")

    def values(self, channels, cell, space, old, fresh):
        return remember(old, cell, channels[self.options.channel].float())

