"""Hebbian rules (plain Hebb, instar, Oja, SoftHebb) in closed form and as Miconi's (2021) loss.

For unit j with weight w_j, input x (conv: each unfolded input patch), potential u_j = w_j . x and
post-synaptic factor y_j, summed over the batch and positions (and divided by their count n, ``reduction =
"mean"``):

    hebb:     dw_j = 1/n sum y_j x                     (no decay)
    instar:   dw_j = 1/n sum y_j (x - w_j)             (Grossberg)
    oja:      dw_j = 1/n sum y_j (x - y_j w_j)
    softhebb: dw_j = 1/n sum y_j (x - u_j w_j)         (Journe et al. 2023: the decay uses y u, not y^2)

i.e. dW = (C(y, x) - c * W) / n with C the input-output correlation and c_j = 0, sum y_j, sum y_j^2,
sum y_j u_j. Then, optionally (SoftHebb's released update, demo.py), ``scale = "max"`` divides dW by its
largest |entry| and ``lr_power = p`` multiplies unit j's change by (| |w_j| - 1 | + 1e-10)^p, a learning
rate that vanishes as the unit's norm reaches 1 (the optimiser's lr is then SoftHebb's lr0).

Loss form: a surrogate s whose *value* is y but whose graph is that of ``u`` (hebb), ``u - |w|^2/2``
(instar), ``u - y |w|^2/2`` (oja, y constant) or ``u - u |w|^2/2`` (softhebb, the second u constant), and
L = -1/2 sum s^2 (/ n); then -dL/dW equals the closed form exactly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import torch
import torch.nn.functional as F

from saccade_sim.errors import ConfigError
from saccade_sim.registry import RULES

from .base import WEIGHT, Factors, Rule, Step, loss_changes
from .competition import soft_wta, update_thresholds, winners

if TYPE_CHECKING:  # annotations only: a rule is given its layer, it does not build one
    from ..layers import Layer

KINDS = ("hebb", "instar", "oja", "softhebb")


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


def hebbian_delta(kind: str, layer: Layer, x: torch.Tensor, y: torch.Tensor, a: torch.Tensor | None = None,
                  reduction: str = "mean") -> torch.Tensor:
    """Closed-form dW for ``kind`` in hebb / instar / oja / softhebb (module docstring; softhebb needs the
    potential ``a``); ``reduction = "sum"`` does not divide by n."""
    w = layer.weight
    c = correlation(layer, x, y)  # a fresh tensor: updated in place below (fused, no temporaries)
    if kind == "softhebb":
        c.addcmul_(_per_unit(y * a, w), w, value=-1)
    elif kind in ("instar", "oja"):
        c.addcmul_(_per_unit(y, w, 1 if kind == "instar" else 2), w, value=-1)
    return layer.masked(c.div_(n_terms(y)) if reduction == "mean" else c)


def hebbian_loss(kind: str, layer: Layer, x: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Miconi's loss: L = -1/2 sum s^2 (/ n), value(s) = y, graph(s) = u - decay (module docstring)."""
    w = layer.weight
    u = layer.potential(x)
    sq = (w * w).flatten(1).sum(1).view(1, -1, *([1] * (u.dim() - 2)))
    if kind == "instar":
        s = u - 0.5 * sq
    elif kind == "oja":
        s = u - 0.5 * y.detach() * sq
    elif kind == "softhebb":
        s = u - 0.5 * u.detach() * sq
    else:
        s = u
    s = s + (y.detach() - s).detach()
    total = -0.5 * (s * s).sum()
    return total / n_terms(y) if reduction == "mean" else total


def norm_dependent_rate(w: torch.Tensor, power: float) -> torch.Tensor:
    """SoftHebb's per-unit learning-rate factor (| |w_j| - 1 | + 1e-10)^power, shaped to broadcast against w."""
    norm = torch.linalg.vector_norm(w.flatten(1), dim=1)
    return ((norm - 1).abs() + 1e-10).pow(power).view(-1, *([1] * (w.dim() - 1)))


def rescale(delta: torch.Tensor, w: torch.Tensor, scale: str, lr_power: float) -> torch.Tensor:
    """``scale = "max"``: delta / (max |delta| + 1e-30); ``lr_power`` > 0: times :func:`norm_dependent_rate`
    (both in place; linear in delta, so a gradient -delta is rescaled the same way)."""
    if scale == "max":
        delta.div_(delta.abs().amax() + 1e-30)
    if lr_power:
        delta.mul_(norm_dependent_rate(w.detach(), lr_power))
    return delta


@dataclass
class HebbianOptions:
    form: str = "closed"  #: "closed" (explicit formula) or "loss" (Miconi's loss, autograd)
    normalize: bool = True  #: rescale each unit's weight vector to unit norm after every step
    competition: str = "none"  #: "none", "kwta" (hard k-winners) or "soft" (SoftHebb softmax)
    k: int = 1  #: winners per position for kwta
    threshold_rate: float = 0.0  #: kwta adaptive-threshold rate (0 = fixed thresholds; the layer's ``threshold``)
    temperature: float = 1.0  #: soft competition temperature
    anti_hebbian: bool = False  #: soft competition: non-winners get -y (SoftHebb's post factor)
    #: kwta: each winner's post factor: "output" (the layer's y), "binary" (1 where a - theta > 0, Miconi's
    #: BINARIZEDPLAST), "potential" (a - theta): the last two do not depend on what the layer transmits
    kwta_post: str = "output"
    #: kwta: which units count as firing for the thresholds: "winners", or "supra" (winners with a - theta > 0)
    homeostasis: str = "winners"
    reduction: str = "mean"  #: "mean" (divide by batch x positions) or "sum" (Miconi's summed loss)
    scale: str = "none"  #: "none" or "max" (divide the change by its largest |entry|, SoftHebb)
    lr_power: float = 0.0  #: > 0: unit j's change times (| |w_j| - 1 | + 1e-10)^lr_power (SoftHebb: 0.5)

    def validate(self, path: str) -> None:
        for key, choices in (("form", ("closed", "loss")), ("competition", ("none", "kwta", "soft")),
                             ("kwta_post", ("output", "binary", "potential")), ("homeostasis", ("winners", "supra")),
                             ("reduction", ("mean", "sum")), ("scale", ("none", "max"))):
            value = getattr(self, key)
            if value not in choices:
                raise ConfigError(f"{path}.{key}: unknown value {value!r}; valid choices: {', '.join(choices)}")
        if self.lr_power < 0:
            raise ConfigError(f"{path}.lr_power: must be >= 0, got {self.lr_power}")
        if self.k < 1:
            raise ConfigError(f"{path}.k: must be >= 1, got {self.k}")
        if self.temperature <= 0:
            raise ConfigError(f"{path}.temperature: must be > 0, got {self.temperature}")


def competition(a: torch.Tensor, y: torch.Tensor, theta: torch.Tensor,
                o: HebbianOptions) -> tuple[torch.Tensor, torch.Tensor]:
    """The post-synaptic factor after competition (what plasticity uses) and the new thresholds. kwta picks
    winners of ``a - theta`` with the layer's thresholds theta (their factor: ``kwta_post``), which homeostasis
    then adapts from the units that fired (``homeostasis``); soft: :func:`soft_wta`; none: y."""
    if o.competition == "kwta":
        won = winners(a, o.k, theta)
        if o.kwta_post != "output" or o.homeostasis == "supra":
            drive = a - theta.view(1, -1, *([1] * (a.dim() - 2)))  # before the thresholds move
            fired = won & (drive > 0)
        if o.threshold_rate:
            theta = update_thresholds(theta, fired if o.homeostasis == "supra" else won, o.k, o.threshold_rate)
        if o.kwta_post == "binary":
            return fired.to(a.dtype), theta
        return torch.where(won, drive if o.kwta_post == "potential" else y, torch.zeros_like(y)), theta
    if o.competition == "soft":
        return soft_wta(a, o.temperature, o.anti_hebbian), theta
    return y, theta


class HebbianRule(Rule):
    """Shared mechanism of hebb / instar / oja; ``kind`` picks the decay term."""

    Options = HebbianOptions
    kind: ClassVar[str] = "hebb"
    state_names = ("threshold",)  #: the layer's adaptive thresholds theta (competition = "kwta")

    def __init__(self, layer: Layer, options: HebbianOptions, index: int, n_layers: int) -> None:
        super().__init__(layer, options, index, n_layers)
        if options.normalize:
            self.after_step()

    @property
    def needs_graph(self) -> bool:  # type: ignore[override]
        return self.options.form == "loss"

    @property
    def threshold(self) -> torch.Tensor:
        return self.layer.threshold

    @threshold.setter
    def threshold(self, value: torch.Tensor) -> None:
        if value is not self.layer.threshold:
            self.layer.threshold.copy_(value)

    def plastic_post(self, a: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """:func:`competition` with the layer's thresholds, which it adapts in place."""
        post, self.threshold = competition(a, y, self.layer.threshold, self.options)
        return post

    def step(self, weights, state, f: Factors) -> Step:
        """dW = rescale(hebbian_delta(kind, x, competition(a, y))) (closed) or rescale(-dL/dW) (loss); the
        thresholds adapted by homeostasis (kwta)."""
        o, w = self.options, weights[WEIGHT]
        a = f.a.detach()
        y, theta = competition(a, f.post.detach(), state["threshold"], o)
        if o.form == "loss":
            loss = hebbian_loss(self.kind, self.layer, f.pre, y, o.reduction)
            delta = loss_changes(loss, {WEIGHT: w})[WEIGHT]
            with torch.no_grad():
                return Step({WEIGHT: rescale(delta, w, o.scale, o.lr_power)}, {"threshold": theta}, loss.detach())
        with torch.no_grad():
            delta = hebbian_delta(self.kind, self.layer, f.pre, y, a, o.reduction)
            return Step({WEIGHT: rescale(delta, w, o.scale, o.lr_power)}, {"threshold": theta}, None)

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
    """Oja: dw = y (x - y w), self-normalising (competition = "soft", anti_hebbian = true gives SoftHebb's post
    factor with Oja's decay y^2: not SoftHebb's update, see softhebb)."""

    kind = "oja"


@dataclass
class SoftHebbOptions(HebbianOptions):
    """SoftHebb's released update (demo.py / hebbconv.py) as the defaults: soft winner-take-all with
    anti-Hebbian losers, the change divided by its largest entry, the norm-dependent learning rate, no
    renormalisation."""

    normalize: bool = False
    competition: str = "soft"
    anti_hebbian: bool = True
    scale: str = "max"
    lr_power: float = 0.5


@RULES.register("softhebb")
class SoftHebb(HebbianRule):
    """SoftHebb (Journe et al. 2023) as released: y = +-softmax(u / T), dw = y (x - u w) / max|.|, lr0 | |w| - 1 |^0.5."""

    Options = SoftHebbOptions
    kind = "softhebb"
    default_lr = 0.08  #: the released first block's lr0 (the others: 0.005, 0.01; set per layer)
