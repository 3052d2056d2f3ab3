"""The rule contract.

The engine hands a rule the four factors of an update (pre-synaptic input, post-synaptic activity, dendritic
input, broadcast modulator: :class:`Factors`). A rule's math is one step, :meth:`Rule.step`: a function of the
weights, the rule's named state, the factors and its options that returns a :class:`Step` (the changes dW by
parameter name, the new state, the local loss, the rows to write into state buffers, its diagnostics); it writes
nothing. :meth:`Rule.update` applies a step: each dW goes into ``param.grad`` as ``-dW`` (:func:`write_delta`,
so that a stock ``torch.optim`` optimiser *descending* the gradient *adds* ``lr * dW``), the new state replaces
the old, the rows are written (:class:`Write`) and the diagnostics are kept. A loss-form rule's dW is minus the gradient
of its local loss w.r.t. this layer's own parameters only (:func:`loss_changes`). Inputs are detached: nothing
crosses layers backwards. A rule written against the older contract may still override :meth:`update` and
write ``.grad`` itself.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, NamedTuple

import torch
from torch import nn

from saccade_sim.events import Glimpse

if TYPE_CHECKING:  # annotations only: a rule is given its layer, it does not build one
    from ..layers import Layer


@dataclass
class Factors:
    """What a rule receives at one event: ``pre`` x (the detached layer input as the weights see it:
    ``Layer.prepare``'s normalised, padded input), ``a`` = W x, ``post`` y = rho(a),
    ``modulator`` m [B] (+1 / -1 / 0), the event itself (stimulus ids, time) in ``glimpse``, and ``dendrite``
    [B, C, ...] (shaped as ``a``): the summed input of the layer's dendritic edges (``[[network.edges]]`` with
    ``target = "dendrite"``: a higher area's top-down output, a neighbour's), None where it has none."""

    pre: torch.Tensor
    a: torch.Tensor
    post: torch.Tensor
    modulator: torch.Tensor
    glimpse: Glimpse
    dendrite: torch.Tensor | None = None
    #: per dendritic edge, by source: the presynaptic activity z [B, C_s] its weights see (the PSP)
    dendritic_pre: dict[str, torch.Tensor] | None = None


class Write(NamedTuple):
    """Rows of a named state that :meth:`Rule.update` writes in place after a step: ``state[name][index] = value``,
    or ``+= value`` where ``add`` (``index`` a tuple of index tensors, as :meth:`torch.Tensor.index_put_`)."""

    name: str
    index: tuple[torch.Tensor, ...]
    value: torch.Tensor
    add: bool = False


class Step(NamedTuple):
    """One event of a rule: ``updates`` dW by parameter name (:meth:`Rule.weights`' names; a descending optimiser
    adds lr dW), ``state`` the new value of each named state (:attr:`Rule.state_names`) the step changed, the
    local ``loss`` (a 0-d tensor, or None), ``writes`` the rows of named state (ring buffers) that the runtime
    writes in place, in order, after replacing ``state`` (so a step stays pure without copying a whole buffer per
    event), and ``diagnostics`` what the step measured for channels and monitors (kept as
    :attr:`Rule.diagnostics` until the next step)."""

    updates: dict[str, torch.Tensor]
    state: dict[str, Any]
    loss: torch.Tensor | None
    writes: tuple[Write, ...] = ()
    diagnostics: Mapping[str, Any] = MappingProxyType({})


#: the names of the layer's own parameters in :meth:`Rule.weights`
WEIGHT, BIAS = "layer.op.weight", "layer.op.bias"


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


def loss_changes(loss: torch.Tensor, weights: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """dW = -dL/dW for each of ``weights`` (zero where the loss does not depend on it; no graph kept)."""
    grads = torch.autograd.grad(loss, list(weights.values()), allow_unused=True)
    return {name: torch.zeros_like(w) if g is None else g.detach().neg()
            for (name, w), g in zip(weights.items(), grads)}


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
    #: the rule's named state (buffers or attributes) that :meth:`step` reads and replaces; saved in checkpoints
    #: with the rule's ``state_dict``
    state_names: ClassVar[tuple[str, ...]] = ()
    #: the named states whose dim 1 indexes the eyes (per-eye state such as CLAPP's contexts): a checkpoint stores
    #: them per eye shard, gathered from every rank, so each rank (on any layout) resumes with its own eyes' state.
    #: With asynchronous eyes an event holds only some eyes (``Glimpse.eyes``): the step reads and advances the
    #: state of those eyes only
    eye_buffers: ClassVar[tuple[str, ...]] = ()

    def __init__(self, layer: Layer, options: Any, index: int, n_layers: int) -> None:
        super().__init__()
        self.layer_ref = [layer]  # not a submodule: the layer's parameters are registered by the agent
        self.options = options
        self.index = index
        self.n_layers = n_layers
        self.edges: dict = {}  #: source -> the DendriticEdge to this layer's dendrite (set by the agent)
        self.diagnostics: dict[str, Any] = {}  #: the last step's (:attr:`Step.diagnostics`)

    @property
    def layer(self) -> Layer:
        return self.layer_ref[0]

    @classmethod
    def draws_needed(cls, options: Any) -> int:
        """How many uniform numbers per eye and stimulus presentation this rule takes from the Eye's
        ``Glimpse.draws`` (per-presentation randomness from the eye's seeded shard stream; default none)."""
        return 0

    def bind(self, space: Any, draws: slice, shard_size: int, batch: int = 0) -> None:
        """Called once before the first event with the modality's gaze space, this rule's columns of
        ``Glimpse.draws``, the eyes per logical shard (for rules that pair glimpses by gaze geometry) and the eyes
        of the batch (for per-eye state; 0: one shard)."""

    def weights(self) -> dict[str, torch.Tensor]:
        """What a step may change, by name: the layer's parameters (``layer.op.weight``, ``layer.op.bias``,
        ``layer.bn_weight``, ...), the rule's own (``pred``, ``head.0.weight``, ...) and those of the edges to the
        layer's dendrite (``edge.SOURCE.weight``)."""
        return {**{f"layer.{n}": p for n, p in self.layer.named_parameters()}, **dict(self.named_parameters()),
                **{f"edge.{source}.weight": e.weight for source, e in self.edges.items()}}

    def state(self) -> dict[str, Any]:
        """The named state, :attr:`state_names`, as it is now."""
        return {name: getattr(self, name) for name in self.state_names}

    def step(self, weights: Mapping[str, torch.Tensor], state: Mapping[str, Any], f: Factors) -> Step:
        """This event's changes, new state and loss from ``weights``, ``state``, the factors ``f`` and
        ``self.options`` (and the layer's fixed geometry): the rule's math, writing nothing."""
        raise NotImplementedError

    def update(self, f: Factors) -> torch.Tensor | None:
        """Apply :meth:`step`: each dW into ``.grad`` as ``-dW``, the new state kept, its rows written, its
        diagnostics kept; returns the local loss."""
        weights = self.weights()
        out = self.step(weights, self.state(), f)
        with torch.no_grad():
            for name, delta in out.updates.items():
                write_delta(weights[name], delta)
            for name, value in out.state.items():
                setattr(self, name, value)
            for w in out.writes:
                self.write(w)
        self.diagnostics = dict(out.diagnostics)
        return out.loss

    def write(self, w: Write) -> None:
        """Write one of a step's rows into its named state, in place."""
        getattr(self, w.name).index_put_(w.index, w.value, accumulate=w.add)

    def eye_loss(self) -> torch.Tensor | None:
        """[B]: each eye's part of the last event's local loss (the ``"<area>/loss"`` channel); None: no loss."""
        return None

    def after_step(self) -> None:
        """Called after the optimiser step (e.g. weight normalisation)."""

    def reset(self) -> None:
        """Forget per-stream state (contexts of earlier glimpses)."""
