"""The rule contract.

The engine hands a rule the four factors of a three-factor update (pre-synaptic input, post-synaptic
activity, dendritic prediction, broadcast modulator). A rule writes its weight change into ``param.grad``
as ``-dW`` (so that a stock ``torch.optim`` optimiser *descending* the gradient *adds* ``lr * dW``), either
from a closed form (:func:`write_delta`) or as the gradient of a local loss w.r.t. this layer's own
parameters only (:func:`write_loss_grad`). Inputs are detached: nothing crosses layers backwards.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from saccade_sim.events import Glimpse

if TYPE_CHECKING:  # annotations only: a rule is given its layer, it does not build one
    from ..layers import Layer



@dataclass
class Factors:
    """What a rule receives at one event: ``pre`` x (the detached layer input as the weights see it:
    ``Layer.prepare``'s normalised, padded input), ``a`` = W x, ``post`` y = rho(a),
    ``modulator`` m [B] (+1 / -1 / 0), and the event itself (stimulus ids, time) in ``glimpse``."""

    pre: torch.Tensor
    a: torch.Tensor
    post: torch.Tensor
    modulator: torch.Tensor
    glimpse: Glimpse


def write_delta(param: torch.Tensor, delta: torch.Tensor) -> None:
    """param.grad = -dW (a descending optimiser then applies +lr * dW).

    One fused pass into the existing ``.grad`` buffer (kept across events, in the parameter's memory format),
    so no weight-sized tensor is allocated per event."""
    if param.grad is None or param.grad.shape != param.shape:
        param.grad = torch.empty_like(param, memory_format=_format(param))
    torch.neg(delta, out=param.grad)


def write_loss_grad(loss: torch.Tensor, params: list[torch.Tensor]) -> None:
    """param.grad = dL/dparam for this layer's own parameters (no graph kept, nothing else touched)."""
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    for p, g in zip(params, grads):
        p.grad = torch.zeros_like(p) if g is None else g.detach()


def _format(p: torch.Tensor) -> torch.memory_format:
    if p.dim() == 4 and p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


class Rule(nn.Module):
    """Base class of learning rules (a registered plugin of ``saccade_sim.registry.RULES``).

    Subclasses set ``Options`` (dataclass: their keys in ``[rule]``) and implement :meth:`update`. They
    may own parameters (prediction weights, projection heads): these are optimised with the layer's.
    ``needs_graph = True`` makes the agent compute ``a`` with autograd on (loss-form rules).
    """

    Options: ClassVar[type | None] = None
    needs_graph: ClassVar[bool] = False
    default_lr: ClassVar[float] = 0.01  #: ``rule.lr`` when the config does not set it
    default_optimizer: ClassVar[str] = "sgd"  #: ``rule.optimizer`` when the config does not set it
    #: buffers whose dim 1 indexes the eyes (per-eye state such as CLAPP's contexts): a checkpoint stores them
    #: per eye shard, gathered from every rank, so each rank (on any layout) resumes with its own eyes' state
    eye_buffers: ClassVar[tuple[str, ...]] = ()

    def __init__(self, layer: Layer, options: Any, index: int, n_layers: int) -> None:
        super().__init__()
        self.layer_ref = [layer]  # not a submodule: the layer's parameters are registered by the agent
        self.options = options
        self.index = index
        self.n_layers = n_layers

    @property
    def layer(self) -> Layer:
        return self.layer_ref[0]

    @classmethod
    def draws_needed(cls, options: Any) -> int:
        """How many uniform numbers per eye and stimulus presentation this rule takes from the Eye's
        ``Glimpse.draws`` (per-presentation randomness from the eye's seeded shard stream; default none)."""
        return 0

    def bind(self, space: Any, draws: slice, shard_size: int) -> None:
        """Called once before the first event with the modality's gaze space, this rule's columns of
        ``Glimpse.draws`` and the eyes per logical shard (for rules that pair glimpses by gaze geometry)."""

    def update(self, f: Factors) -> torch.Tensor | None:
        """Write this event's changes into ``.grad``; optionally return the local loss (a 0-d tensor)."""
        raise NotImplementedError

    def eye_loss(self) -> torch.Tensor | None:
        """[B]: each eye's part of the last event's local loss (the ``"<area>/loss"`` channel); None: no loss."""
        return None

    def after_step(self) -> None:
        """Called after the optimiser step (e.g. weight normalisation)."""

    def reset(self) -> None:
        """Forget per-stream state (contexts of earlier glimpses)."""
