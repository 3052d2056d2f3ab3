"""What each part needs of another, as protocols: the engine drives a policy, a modality and layer agents, an
agent may be given a weight synchroniser, a probe runs layers over a modality's glimpses. A part types its
neighbours with these and so imports none of them (the concrete classes live in their own parts)."""
from __future__ import annotations

from typing import Mapping, Protocol

import torch

from .events import Glimpse
from .gaze import GazeSpace


class GlimpseSource(Protocol):
    """A modality as the eye and the probe use it (:class:`saccade_sim.modalities.base.Modality`)."""

    @property
    def space(self) -> GazeSpace: ...

    @property
    def view_size(self) -> int: ...

    def sample_view(self, n: int, generator: torch.Generator) -> torch.Tensor: ...

    def cut(self, store: torch.Tensor, idx: torch.Tensor, gaze: torch.Tensor,
            view: torch.Tensor | None = None) -> torch.Tensor: ...

    def grid_glimpses(self, store: torch.Tensor, idx: torch.Tensor) -> torch.Tensor: ...


class GazePolicy(Protocol):
    """A saccade policy (:class:`saccade_sim.policies.SaccadePolicy`): gaze coordinates [batch, D] (long), and
    what it reads of the network (the channels it ``subscribes`` to, given to :meth:`observe` after each event)."""

    subscribes: tuple[str, ...]

    def sample(self, step: int, batch: int, space: GazeSpace, generator: torch.Generator) -> torch.Tensor: ...

    def observe(self, channels: Mapping[str, torch.Tensor], gaze: torch.Tensor) -> None: ...


class ClosedLoopGazePolicy(GazePolicy, Protocol):
    """A policy that subscribes to channels (:class:`saccade_sim.closed_loop.ClosedLoopPolicy`): its random draws
    are made on the CPU ahead (``draw``: a tuple of tensors, each [batch, ...]), its choice on the device from
    them once the event before has been observed (``gaze``)."""

    @property
    def observed(self) -> bool: ...

    def bind(self, space: GazeSpace, batch: int, device: torch.device) -> None: ...

    def draw(self, step: int | torch.Tensor, batch: int, space: GazeSpace, generator: torch.Generator,
             observed: bool) -> tuple[torch.Tensor, ...]: ...

    def gaze(self, draws: tuple[torch.Tensor, ...]) -> torch.Tensor: ...


class Area(Protocol):
    """A layer agent as the simulation drives it (:class:`agents.agent.LayerAgent`): one event in (the ``join`` of
    its feedforward inputs where it has several), one out."""

    name: str
    dendritic_inputs: dict[str, torch.Tensor]

    def join(self, inputs: list[Glimpse]) -> Glimpse: ...

    def step(self, g: Glimpse) -> Glimpse: ...

    def eye_loss(self) -> torch.Tensor | None: ...


class Transmitter(Protocol):
    """A layer as a probe runs it (:class:`agents.layers.Layer`): its input ``x`` gathered from the representations
    so far, ``(a, y) = layer(x)``, then what it transmits."""

    def gather(self, representations: list[torch.Tensor]) -> torch.Tensor: ...

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

    def transmit(self, y: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor: ...


class WeightSync(Protocol):
    """Averages an agent's changes over ranks before its optimiser step and its weights after it
    (:class:`saccade_sim.distributed.WeightSync`)."""

    def before_step(self) -> None: ...

    def after_step(self) -> None: ...
