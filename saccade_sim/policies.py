"""Saccade policies: where each eye looks next. A policy only samples gaze parameters; the modality cuts
the glimpse (torchvision's split between sampling a transform's parameters and applying it)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Mapping

import torch

from .gaze import GazeSpace
from .registry import POLICIES


class SaccadePolicy:
    """Base class. ``sample(step, batch, space, generator)`` returns gaze coordinates [batch, D] (long).

    A closed-loop policy names the network channels it reads in ``subscribes`` (:mod:`saccade_sim.channels`:
    ``"layer1/activity"``, ``"layer2/loss"``, ``"modulator"``, ``"stimulus"``, ``"gaze"``); the engine then calls
    :meth:`observe` after each event with their latest tensors, before the next :meth:`sample`. A policy that
    subscribes to nothing is never called and costs nothing."""

    Options = None
    subscribes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, options=None) -> None:
        self.options = options

    def observe(self, channels: Mapping[str, torch.Tensor], gaze: torch.Tensor) -> None:
        """The latest tensors of the subscribed channels, by name, and the gaze [B, D] of the last event."""

    def sample(self, step: int, batch: int, space: GazeSpace, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError


@POLICIES.register("raster")
class RasterPolicy(SaccadePolicy):
    """CLAPP raster: visit the gaze grid in order (time runs down each column), all eyes in step."""

    def sample(self, step, batch, space, generator):
        return space.grid[step % space.size].expand(batch, -1)


@dataclass
class RandomOptions:
    free: bool = False  #: any in-bounds position instead of grid positions


@POLICIES.register("random")
class RandomPolicy(SaccadePolicy):
    """Uniform random fixations, independently per eye: on the gaze grid, or anywhere in bounds."""

    Options = RandomOptions

    def sample(self, step, batch, space, generator):
        if self.options.free:
            u = torch.rand(batch, space.high.numel(), generator=generator)
            return (u * (space.high + 1)).long().clamp_max(space.high)
        return space.grid[torch.randint(space.size, (batch,), generator=generator)]
