"""Hebbian rules (plain Hebb, instar, Oja) in closed form and as Miconi's (2021) loss.

For unit j with weight w_j, input x (conv: each unfolded input patch) and output y_j, summed over the
batch and positions and divided by their count n:

    hebb:   dw_j = 1/n sum y_j x                     (no decay)
    instar: dw_j = 1/n sum y_j (x - w_j)             (Grossberg)
    oja:    dw_j = 1/n sum y_j (x - y_j w_j)

i.e. dW = (C(y, x) - c * W) / n with C the input-output correlation and c_j = 0, sum y_j, sum y_j^2.

Loss form: a surrogate s whose *value* is y but whose graph is that of
``u`` (hebb), ``u - |w|^2/2`` (instar) or ``u - y |w|^2/2`` (oja, y constant), and L = -1/2 sum s^2 / n;
then -dL/dW equals the closed form exactly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from saccade_sim.errors import ConfigError
from saccade_sim.registry import RULES

from ..layers import Layer
from .base import Factors, Rule, write_delta, write_loss_grad
from .competition import soft_wta, update_thresholds, winners

KINDS = ("hebb", "instar", "oja")


#: conv outputs with at most this many positions get their weight gradient from unfold + one matmul: on CPU,
#: the library's weight-gradient kernel was 1.7x (4x4) to 5.7x (2x2) slower there (benchmarks/README.md)
SMALL_MAP = 16


def correlation(layer: Layer, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """C(y, x) = sum over batch and positions of y_j x (conv: x the unfolded input patch at y's position)."""
    if not layer.is_conv:
        return y.t() @ x.flatten(1)
    op = layer.op
    if y.device.type == "cpu" and y[0, 0].numel() <= SMALL_MAP:
        patches = F.unfold(x, op.kernel_size, op.dilation, op.padding, op.stride)  # [B, C_in k k, positions]
        rows = y.transpose(0, 1).reshape(y.shape[1], -1)  # [C_out, B positions]
        return (rows @ patches.transpose(1, 2).reshape(rows.shape[1], -1)).view(op.weight.shape)
    x, y = layer.as_input(x), layer.as_input(y)  # both in the layer's format: mixed formats are 2x slower on CPU
    return torch.nn.grad.conv2d_weight(x, op.weight.shape, y, op.stride, op.padding)


def _per_unit(t: torch.Tensor, like: torch.Tensor, power: int = 1) -> torch.Tensor:
    """sum of ``t`` (power 1) or of ``t^2`` (power 2) over [B, C, ...] to [C], shaped to broadcast against the
    weight ``like`` [C, ...] (the square is reduced without a [B, C, ...] temporary)."""
    dims = [0] + list(range(2, t.dim()))
    total = t.sum(dim=dims) if power == 1 else torch.linalg.vector_norm(t, dim=dims).square()
    return total.view(-1, *([1] * (like.dim() - 1)))


def n_terms(y: torch.Tensor) -> int:
    """Batch size times positions: the number of (x, y) pairs an update averages."""
    return y.shape[0] * (y[0, 0].numel())


def hebbian_delta(kind: str, layer: Layer, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Closed-form dW for ``kind`` in hebb / instar / oja (module docstring)."""
    w = layer.weight
    c = correlation(layer, x, y)  # a fresh tensor: updated in place below (fused, no temporaries)
    if kind in ("instar", "oja"):
        c.addcmul_(_per_unit(y, w, 1 if kind == "instar" else 2), w, value=-1)
    return layer.masked(c.div_(n_terms(y)))


def hebbian_loss(kind: str, layer: Layer, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Miconi's loss: L = -1/2 sum s^2 / n, value(s) = y, graph(s) = u - decay (module docstring)."""
    w = layer.weight
    u = layer.potential(x)
    sq = (w * w).flatten(1).sum(1).view(1, -1, *([1] * (u.dim() - 2)))
    if kind == "instar":
        s = u - 0.5 * sq
    elif kind == "oja":
        s = u - 0.5 * y.detach() * sq
    else:
        s = u
    s = s + (y.detach() - s).detach()
    return -0.5 * (s * s).sum() / n_terms(y)


@dataclass
class HebbianOptions:
    form: str = "closed"  #: "closed" (explicit formula) or "loss" (Miconi's loss, autograd)
    normalize: bool = True  #: rescale each unit's weight vector to unit norm after every step
    competition: str = "none"  #: "none", "kwta" (hard k-winners) or "soft" (SoftHebb softmax)
    k: int = 1  #: winners per position for kwta
    threshold_rate: float = 0.0  #: kwta adaptive-threshold rate (0 = fixed thresholds; the layer's ``threshold``)
    temperature: float = 1.0  #: soft competition temperature
    anti_hebbian: bool = False  #: soft competition: non-winners get -y (SoftHebb)

    def validate(self, path: str) -> None:
        if self.form not in ("closed", "loss"):
            raise ConfigError(f"{path}.form: unknown value {self.form!r}; valid choices: closed, loss")
        if self.competition not in ("none", "kwta", "soft"):
            raise ConfigError(f"{path}.competition: unknown value {self.competition!r}; valid choices: none, kwta, soft")
        if self.k < 1:
            raise ConfigError(f"{path}.k: must be >= 1, got {self.k}")
        if self.temperature <= 0:
            raise ConfigError(f"{path}.temperature: must be > 0, got {self.temperature}")


class HebbianRule(Rule):
    """Shared mechanism of hebb / instar / oja; ``kind`` picks the decay term."""

    Options = HebbianOptions
    kind: ClassVar[str] = "hebb"

    def __init__(self, layer: Layer, options: HebbianOptions, index: int, n_layers: int) -> None:
        super().__init__(layer, options, index, n_layers)
        if options.normalize:
            self.after_step()

    @property
    def needs_graph(self) -> bool:  # type: ignore[override]
        return self.options.form == "loss"

    def plastic_post(self, a: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The post-synaptic factor after competition (what plasticity uses). kwta picks winners of
        ``a - theta`` with the layer's thresholds theta, which homeostasis then adapts."""
        o = self.options
        if o.competition == "kwta":
            theta = self.layer.threshold
            won = winners(a, o.k, theta)
            if o.threshold_rate:
                theta.copy_(update_thresholds(theta, won, o.k, o.threshold_rate))
            return torch.where(won, y, torch.zeros_like(y))
        if o.competition == "soft":
            return soft_wta(a, o.temperature, o.anti_hebbian)
        return y

    def update(self, f: Factors) -> torch.Tensor | None:
        y = self.plastic_post(f.a.detach(), f.post.detach())
        if self.options.form == "loss":
            loss = hebbian_loss(self.kind, self.layer, f.pre, y)
            write_loss_grad(loss, [self.layer.weight])
            return loss.detach()
        with torch.no_grad():
            write_delta(self.layer.weight, hebbian_delta(self.kind, self.layer, f.pre, y))
        return None

    @torch.no_grad()
    def after_step(self) -> None:
        if self.options.normalize:
            w = self.layer.weight
            w.div_(torch.linalg.vector_norm(w, dim=tuple(range(1, w.dim())), keepdim=True).clamp_min(1e-12))


@RULES.register("hebb")
class Hebb(HebbianRule):
    """Plain Hebb: dw = y x (unbounded without normalisation or competition = "kwta" / "soft")."""

    kind = "hebb"


@RULES.register("instar")
class Instar(HebbianRule):
    """Instar (Grossberg): dw = y (x - w); with competition = "kwta" the competitive Hebbian rule of Miconi's net."""

    kind = "instar"


@RULES.register("oja")
class Oja(HebbianRule):
    """Oja: dw = y (x - y w), self-normalising; with competition = "soft", anti_hebbian = true: SoftHebb."""

    kind = "oja"
