"""Foveated glimpses (``glimpse.retina``), for the image and video modalities, at real-valued gazes.

A gaze (y, x) is the top-left corner of the plain ``patch x patch`` glimpse, so its centre is
``(y + (p - 1) / 2, x + (p - 1) / 2)`` in pixel coordinates. Both retinas sample the images with
``torch.nn.functional.grid_sample`` (bilinear, borders repeated outward, so a constant image gives a constant
glimpse) and return p x p maps:

- ``"multires"``: ``levels`` concentric square patches of sides ``p s^i`` (i = 0 .. levels-1, s =
  ``retina_scale``), patch i sampled at ``p s^i`` points one pixel apart and averaged over s^i x s^i blocks (a
  box filter) down to p x p; stacked as channels, level-major: ``[B, levels * C, p, p]``. Level 0 is the plain
  glimpse.
- ``"logpolar"``: p rings x p wedges around the centre: ring i at radius ``r_i = r_0 (R / r_0)^(i / (p - 1))``
  (r_0 = 0.5 px, R = half the outer multires side, ``p s^(levels-1) / 2``), wedge j at angle ``2 pi j / p``;
  ``[B, C, p, p]`` (rows: rings inside out, columns: angle).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .errors import ConfigError

RETINAS = ("none", "multires", "logpolar")


def check_retina(options, path: str) -> None:
    """Validate the retina keys of a ``[glimpse]`` table (``retina``, ``retina_levels``, ``retina_scale``)."""
    if options.retina not in RETINAS:
        raise ConfigError(f"{path}.retina: unknown value {options.retina!r}; valid choices: {', '.join(RETINAS)}")
    if options.retina_levels < 1:
        raise ConfigError(f"{path}.retina_levels: must be >= 1, got {options.retina_levels}")
    if options.retina_scale < 2:
        raise ConfigError(f"{path}.retina_scale: must be an integer >= 2, got {options.retina_scale}")


def retina_channels(options) -> int:
    """Channels of a foveated glimpse per input channel."""
    return options.retina_levels if options.retina == "multires" else 1


def sample_at(images: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of ``images`` [B, C, H, W] at pixel coordinates ``y``, ``x`` [B, *S] (borders repeated):
    [B, C, *S]."""
    h, w = images.shape[-2:]
    grid = torch.stack([2 * x / max(w - 1, 1) - 1, 2 * y / max(h - 1, 1) - 1], -1)  # align_corners: pixel centres
    shape = y.shape
    out = F.grid_sample(images, grid.reshape(len(images), -1, 1, 2).to(images.dtype), mode="bilinear",
                        padding_mode="border", align_corners=True)
    return out.view(*out.shape[:2], *shape[1:])


def multires(images: torch.Tensor, gaze: torch.Tensor, patch: int, levels: int, scale: int) -> torch.Tensor:
    """The multi-resolution glimpse [B, levels * C, p, p] of ``images`` [B, C, H, W] at ``gaze`` [B, 2] (float
    top-left corners of the plain patch; module docstring)."""
    centre = gaze.to(images.dtype) + (patch - 1) / 2
    out = []
    for i in range(levels):
        f = scale ** i
        side = patch * f
        offsets = torch.arange(side, dtype=images.dtype, device=images.device) - (side - 1) / 2
        y = (centre[:, 0, None, None] + offsets[None, :, None]).expand(-1, side, side)
        x = (centre[:, 1, None, None] + offsets[None, None, :]).expand(-1, side, side)
        level = sample_at(images, y, x)
        out.append(F.avg_pool2d(level, f) if f > 1 else level)
    return torch.cat(out, 1)


def logpolar(images: torch.Tensor, gaze: torch.Tensor, patch: int, levels: int, scale: int) -> torch.Tensor:
    """The log-polar glimpse [B, C, p, p] (rings x wedges) of ``images`` [B, C, H, W] at ``gaze`` [B, 2]."""
    centre = gaze.to(images.dtype) + (patch - 1) / 2
    r0, outer = 0.5, patch * scale ** (levels - 1) / 2
    i = torch.arange(patch, dtype=images.dtype, device=images.device)
    radius = r0 * (outer / r0) ** (i / max(patch - 1, 1))
    angle = 2 * math.pi * i / patch
    y = centre[:, 0, None, None] + radius[None, :, None] * torch.sin(angle)[None, None, :]
    x = centre[:, 1, None, None] + radius[None, :, None] * torch.cos(angle)[None, None, :]
    return sample_at(images, y, x)


def foveate(images: torch.Tensor, gaze: torch.Tensor, options) -> torch.Tensor:
    """The ``options.retina`` glimpse of ``images`` [B, C, H, W] at ``gaze`` [B, 2] (module docstring)."""
    fn = multires if options.retina == "multires" else logpolar
    return fn(images, gaze, options.patch, options.retina_levels, options.retina_scale)


def foveate_frames(clips: torch.Tensor, gaze: torch.Tensor, options) -> torch.Tensor:
    """Video: ``clips`` [B, C, T, H, W], ``gaze`` [B, 3] (t, y, x) -> the foveated glimpse of each of the
    glimpse's ``options.frames`` frames, time-major channels inside each level: [B, R * frames * C, p, p]."""
    b, c, t, h, w = clips.shape
    f = options.frames
    frames = torch.arange(f, device=clips.device) + gaze[:, :1].long()  # [B, f]
    box = clips[torch.arange(b, device=clips.device)[:, None], :, frames]  # [B, f, C, H, W]
    return foveate(box.reshape(b, f * c, h, w), gaze[:, 1:], options)
