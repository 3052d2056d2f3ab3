"""CLAPP and CLAPP-s (Illing et al. 2021): each layer predicts its own later representation across saccades.

For one layer, an eye's glimpse at event T (target) and the same eye's glimpse k events earlier
(context) give pooled outputs ``z = mean_pos rho(W x_T)`` and ``c = mean_pos rho(W x_{T-k})`` [C], the
score ``u = z^T P_k c`` (one prediction matrix ``P_k`` per offset k) and the hinge loss
``L = max(0, margin - y u)``; ``y = +1`` if the eye stayed on the same stimulus over those k events,
``-1`` if it jumped to another one (the Eye's broadcast modulator), ``0`` when there is no context (first
fixation). The third factor is ``gamma = y * H`` with ``H = 1`` if ``y u < margin``, else 0, and

    dP_k = gamma z c^T                      dR_k = gamma c z^T   (CLAPP only)
    dW_j = gamma [ (P_k c)_j mean_pos rho'(a_j^T) x^T  +  (R_k z)_j mean_pos rho'(a_j^{T-k}) x^{T-k} ]

(modulator x dendritic prediction x post x pre), averaged over the B eyes and summed over pairs and
offsets. CLAPP learns the retrograde matrix ``R_k``; CLAPP-s uses ``R_k = P_k^T`` (then dW is exactly
the gradient of the hinge loss). With ``negatives = "batch"`` every positive context is also paired with
the target of another eye of the batch at the same event (y = -1), the reference code's per-layer
negative sampling.

The explicit formula (:func:`clapp_delta`) and the loss form (:func:`clapp_loss`, whose gradient w.r.t.
the layer's own parameters with detached inputs is the same update) are proven equal in the tests.

``timing`` says when the context terms are applied (a target's term is applied at its own event).
``"immediate"``: at each event, for the K contexts (a weight-gradient call over (1 + K) B glimpses).
``"deferred"``: each glimpse keeps its eligibility ``rho'(a) x`` (its input and potential) while it can
still be a context; the factors ``gamma (R_k z)`` it receives at the K later events are summed and applied
once, when it leaves the context window (max(offsets) events later): one weight-gradient call over 2B
glimpses per event, and the same total change.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from saccade_sim.errors import ConfigError
from saccade_sim.registry import RULES

from ..layers import Layer
from .base import Factors, Rule, write_delta, write_loss_grad
from .hebbian import correlation

HISTORY = ("past_x", "past_a", "past_m", "past_s", "past_z", "past_d")


class Pairs(NamedTuple):
    """Per offset k (dim 0), P (target, context) pairs: indices into the current batch and into the batch
    of event T-k, and the label y in {+1, -1, 0} (0 = no pair: no loss, no plasticity)."""

    target: torch.Tensor  # long [K, P]
    context: torch.Tensor  # long [K, P]
    y: torch.Tensor  # [K, P]


class ClappFactors(NamedTuple):
    """The modulated dendritic factors of one event (sums over pairs, not yet divided by B): ``target``
    [B, C] = sum_pairs gamma P_k c for each target eye, ``context`` [K, B, C] = sum_pairs gamma R_k z for each
    context, ``pred`` = dP_k (divided by B), and the hinge ``loss``."""

    target: torch.Tensor
    context: torch.Tensor
    pred: torch.Tensor
    loss: torch.Tensor


class ClappDelta(NamedTuple):
    weight: torch.Tensor
    pred: torch.Tensor
    retro: torch.Tensor
    loss: torch.Tensor


def pooled(y: torch.Tensor) -> torch.Tensor:
    """z = mean over positions of y: [B, C, H, W] -> [B, C]; dense outputs [B, C] are returned as they are."""
    return y.flatten(2).mean(2) if y.dim() > 2 else y


def pair_signs(current_m: torch.Tensor, past_m: torch.Tensor, offsets: list[int]) -> torch.Tensor:
    """y [K, B] of the pairs (event T, event T-k) of each eye, from the modulators of events T-k+1..T
    (``past_m[i]`` is event T-1-i): +1 if all are +1 (the eye stayed), -1 if any is -1 (it jumped),
    0 if any is 0 or the history is shorter than k."""
    m = torch.cat([current_m[None], past_m])  # row i: event T-i
    last = torch.tensor([min(k, len(m)) - 1 for k in offsets], device=m.device)  # window rows 0..k-1
    jumped = (m < 0).cumsum(0)[last] > 0
    broken = (m == 0).cumsum(0)[last] > 0
    short = torch.tensor([len(past_m) < k for k in offsets], device=m.device)[:, None]
    signs = torch.where(jumped, -1.0, 1.0).to(m.dtype)
    return signs.masked_fill(broken | short, 0.0)


def make_pairs(signs: torch.Tensor, negatives: str, shift: int, stim_now: torch.Tensor,
               stim_ctx: torch.Tensor) -> Pairs:
    """Pairs of each offset: every eye with itself (label ``signs``); with ``negatives = "batch"`` also each
    positive context with the target of eye ``(b + shift) % B`` (label -1 where that eye sees another
    stimulus than the context's, else 0). ``stim_ctx`` [K, B] are the contexts' stimulus ids."""
    k, b = signs.shape
    eyes = torch.arange(b, device=signs.device).expand(k, b)
    if negatives != "batch" or b < 2:
        return Pairs(eyes, eyes, signs)
    other = (eyes + shift) % b
    valid = (signs > 0) & (stim_now[other] != stim_ctx)
    neg = -valid.to(signs.dtype)
    return Pairs(torch.cat([eyes, other], 1), torch.cat([eyes, eyes], 1), torch.cat([signs, neg], 1))


def _gather(z: torch.Tensor, c: torch.Tensor, pairs: Pairs) -> tuple[torch.Tensor, torch.Tensor]:
    """z [B, C], c [K, B, C] -> target and context vectors of every pair, each [K, P, C]."""
    ks = torch.arange(c.shape[0], device=c.device)[:, None]
    return z[pairs.target], c[ks, pairs.context]


def gate(y: torch.Tensor, u: torch.Tensor, margin: float) -> torch.Tensor:
    """gamma = y * H, H = 1 if y u < margin else 0 (so +1, -1 or 0)."""
    return y * (y * u < margin).to(u.dtype)


def hinge(y: torch.Tensor, u: torch.Tensor, margin: float, n: int) -> torch.Tensor:
    """L = sum over pairs with y != 0 of max(0, margin - y u), divided by the number of eyes n."""
    return (F.relu(margin - y * u) * (y != 0).to(u.dtype)).sum() / n


def dendritic_update(layer: Layer, x: torch.Tensor, a: torch.Tensor, d: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """scale * sum_b d_bj mean_pos rho'(a_bj) x_b (conv: x the input patch at each position); the scale and the
    mean's 1/positions are applied to ``d`` [B, C], before the weight-sized sums."""
    post = layer.rho_prime(a)
    d = d * (scale / post[0, 0].numel())
    return correlation(layer, x, post.mul_(d.view(*d.shape, *[1] * (post.dim() - 2))))


def clapp_factors(z: torch.Tensor, c: torch.Tensor, pred: torch.Tensor, retro: torch.Tensor, pairs: Pairs,
                  margin: float) -> ClappFactors:
    """Scores u = z^T P_k c, gates gamma = y H, and the factors of :class:`ClappFactors` from the pooled target
    outputs ``z`` [B, C], the pooled contexts ``c`` [K, B, C], ``pred`` and ``retro`` [K, C, C]."""
    k, b = c.shape[:2]
    zt, cc = _gather(z, c, pairs)
    pc = torch.einsum("kij,kpj->kpi", pred, cc)  # dendritic prediction of the target: P_k c
    rz = torch.einsum("kij,kpj->kpi", retro, zt)  # retrograde signal to the context: R_k z
    u = (zt * pc).sum(-1)
    gamma = gate(pairs.y, u, margin)
    d_pred = torch.einsum("kp,kpi,kpj->kij", gamma / b, zt, cc)
    d_target = torch.zeros_like(z).index_add_(0, pairs.target.flatten(), (gamma[..., None] * pc).flatten(0, 1))
    ctx_index = (pairs.context + b * torch.arange(k, device=z.device)[:, None]).flatten()
    d_ctx = z.new_zeros(k * b, z.shape[1]).index_add_(0, ctx_index, (gamma[..., None] * rz).flatten(0, 1))
    return ClappFactors(d_target, d_ctx.view(k, b, -1), d_pred, hinge(pairs.y, u, margin, b))


def clapp_delta(layer: Layer, x: torch.Tensor, a: torch.Tensor, ctx_x: torch.Tensor, ctx_a: torch.Tensor,
                pred: torch.Tensor, retro: torch.Tensor, pairs: Pairs, margin: float) -> ClappDelta:
    """The explicit three-factor updates (module docstring) for the current inputs ``x`` [B, ...] with
    potentials ``a``, the contexts ``ctx_x`` [K, B, ...] with potentials ``ctx_a``, ``pred`` and ``retro``
    [K, C, C] (CLAPP-s: pass ``pred.transpose(1, 2)``). Sums over pairs are divided by B."""
    k, b = ctx_x.shape[:2]
    z, c = pooled(layer.rho(a)), pooled(layer.rho(ctx_a.flatten(0, 1))).view(k, b, -1)
    f = clapp_factors(z, c, pred, retro, pairs, margin)
    d_w = dendritic_update(layer, torch.cat([x, ctx_x.flatten(0, 1)]), torch.cat([a, ctx_a.flatten(0, 1)]),
                           torch.cat([f.target, f.context.flatten(0, 1)]), 1 / b)
    return ClappDelta(d_w, f.pred, f.pred.transpose(1, 2), f.loss)


def _with_value(graph: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """A tensor whose value is ``value`` and whose gradient is that of ``graph``."""
    return graph + (value - graph).detach()


def clapp_loss(layer: Layer, x: torch.Tensor, a: torch.Tensor, ctx_x: torch.Tensor, ctx_a: torch.Tensor,
               pred: torch.Tensor, retro: torch.Tensor | None, pairs: Pairs, margin: float) -> torch.Tensor:
    """The layer's hinge loss whose gradient w.r.t. (W, P, R) is minus :func:`clapp_delta`'s update.

    Potentials are recomputed from the detached inputs (values swapped for the given ``a``, ``ctx_a``).
    ``retro = None`` (CLAPP-s): the score is ``u = z(W)^T P c(W)`` and this is the plain hinge loss. With a
    learned ``retro`` R, the score's graph is ``z(W)^T P c + c(W)^T R z`` (z, c held fixed where not
    marked as functions of W), so that the retrograde path runs through R instead of P^T.
    """
    k, b = ctx_x.shape[:2]
    a = _with_value(layer.potential(x), a)
    ctx_a = _with_value(layer.potential(ctx_x.flatten(0, 1)), ctx_a.flatten(0, 1))
    z, c = pooled(layer.rho(a)), pooled(layer.rho(ctx_a)).view(k, b, -1)
    zt, cc = _gather(z, c, pairs)
    if retro is None:
        u = (zt * torch.einsum("kij,kpj->kpi", pred, cc)).sum(-1)
    else:
        forward = (zt * torch.einsum("kij,kpj->kpi", pred, cc.detach())).sum(-1)
        backward = (cc * torch.einsum("kij,kpj->kpi", retro, zt.detach())).sum(-1)
        u = _with_value(forward + backward, forward.detach())
    return hinge(pairs.y, u, margin, b)


@dataclass
class ClappOptions:
    offsets: list[int] = field(default_factory=lambda: [2, 3, 4, 5, 6])  #: events between context and target
    negatives: str = "eye"  #: "eye" (the Eye's jumps give y = -1) or "batch" (also another eye's target)
    margin: float = 1.0  #: hinge margin: no plasticity once y u >= margin
    form: str = "closed"  #: "closed" (explicit three-factor formula) or "loss" (autograd of the hinge loss)
    timing: str = "deferred"  #: context terms applied "immediate"-ly or "deferred" to the glimpse's expiry (closed form)

    def validate(self, path: str) -> None:
        if not self.offsets or any(k < 1 for k in self.offsets) or len(set(self.offsets)) != len(self.offsets):
            raise ConfigError(f"{path}.offsets: expected distinct integers >= 1, got {self.offsets!r}")
        for name, valid in (("negatives", ("eye", "batch")), ("form", ("closed", "loss")),
                            ("timing", ("immediate", "deferred"))):
            if getattr(self, name) not in valid:
                raise ConfigError(f"{path}.{name}: unknown value {getattr(self, name)!r}; "
                                  f"valid choices: {', '.join(valid)}")
        if self.margin <= 0:
            raise ConfigError(f"{path}.margin: must be > 0, got {self.margin}")
        if self.form == "loss" and self.timing == "deferred":
            raise ConfigError(f"{path}.timing: \"deferred\" needs form = \"closed\" (the loss form is "
                              "differentiated at each event); set timing = \"immediate\"")


@RULES.register("clapp")
class Clapp(Rule):
    """CLAPP: hinge-gated prediction of the layer's own next glimpse, learned retrograde weights."""

    Options = ClappOptions
    transpose_retro: ClassVar[bool] = False
    eye_buffers = HISTORY
    default_optimizer = "adam"  #: as the reference (Adam 2e-4 per layer)
    default_lr = 5e-4  #: measured on the natural default (README, CLAPP section)

    def __init__(self, layer: Layer, options: ClappOptions, index: int, n_layers: int) -> None:
        super().__init__(layer, options, index, n_layers)
        n, k = layer.spec.channels, len(options.offsets)
        bound = 1.0 / math.sqrt(n)
        self.pred = nn.Parameter(torch.empty(k, n, n).uniform_(-bound, bound))
        self.retro = None if self.transpose_retro else nn.Parameter(torch.empty(k, n, n).uniform_(-bound, bound))
        for name in HISTORY:  # ring buffers of the last max(offsets) events, allocated at the first event
            self.register_buffer(name, torch.empty(0))
        self.head = -1  #: slot of the newest remembered event
        self.count = 0  #: events remembered (at most max(offsets))

    @property
    def needs_graph(self) -> bool:  # type: ignore[override]
        return self.options.form == "loss"

    @property
    def deferred(self) -> bool:
        return self.options.timing == "deferred"

    @property
    def depth(self) -> int:
        return max(self.options.offsets)

    def get_extra_state(self) -> dict[str, int]:
        return {"head": self.head, "count": self.count}

    def set_extra_state(self, state: dict[str, int]) -> None:
        self.head, self.count = state["head"], state["count"]

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in HISTORY:  # the history's shape is only known once events have been seen
            saved = state_dict.get(prefix + name)
            if saved is not None:
                setattr(self, name, self._ring(saved.shape[1:], saved.dtype) if saved.numel() else saved.new_empty(0))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _ring(self, slot_shape: torch.Size, dtype: torch.dtype) -> torch.Tensor:
        """A zeroed ring buffer [max(offsets), *slot_shape] on the rule's device whose slots are channels_last
        where the layer computes in it (mixed memory formats made the weight gradient 2x slower)."""
        fmt = torch.channels_last if len(slot_shape) == 4 and self.layer.channels_last else torch.contiguous_format
        slot = torch.empty(slot_shape, dtype=dtype, device=self.pred.device, memory_format=fmt)
        return slot.new_empty_strided((self.depth, *slot_shape), (slot.numel(), *slot.stride())).zero_()

    def reset(self) -> None:
        for name in HISTORY:
            setattr(self, name, torch.empty(0, device=self.pred.device))
        self.head, self.count = -1, 0

    def _slots(self, ages: list[int]) -> torch.Tensor:
        """Ring-buffer slots of the events T-1-i, i in ``ages``."""
        return torch.tensor([(self.head - i) % self.depth for i in ages], device=self.pred.device)

    def update(self, f: Factors) -> torch.Tensor:
        o, g = self.options, f.glimpse
        x, a = f.pre, f.a.detach()
        usable = [i for i, k in enumerate(o.offsets) if self.count >= k]
        params = [self.layer.weight, self.pred] + ([] if self.retro is None else [self.retro])
        with torch.no_grad():
            z = pooled(f.post.detach() if not self.layer.spec.kwta else self.layer.rho(a))  # kwta: rho(a), not y
        pending = torch.zeros_like(z) if self.deferred else None  # the sum of this glimpse's context factors
        if not usable:
            for p in params:
                write_delta(p, torch.zeros_like(p))
            loss = torch.zeros((), device=x.device)
        else:
            offsets = [o.offsets[i] for i in usable]
            ctx = self._slots([k - 1 for k in offsets])
            signs = pair_signs(f.modulator, self.past_m[self._slots(range(max(offsets)))], offsets)
            shift = 1 + g.index % max(x.shape[0] - 1, 1)
            pairs = make_pairs(signs, o.negatives, shift, g.stimulus, self.past_s[ctx])
            every = len(usable) == len(o.offsets)
            sel = slice(None) if every else torch.tensor(usable, device=x.device)  # a slice: views, no copies
            pred = self.pred[sel]
            retro = None if self.retro is None else self.retro[sel]
            if o.form == "loss":
                loss = clapp_loss(self.layer, x, a, self.past_x[ctx], self.past_a[ctx], pred, retro, pairs, o.margin)
                write_loss_grad(loss, params)
                loss = loss.detach()
            else:
                with torch.no_grad():
                    d = clapp_factors(z, self.past_z[ctx], pred, pred.transpose(1, 2) if retro is None else retro,
                                      pairs, o.margin)
                    write_delta(self.layer.weight, self._encoder_delta(x, a, ctx, d))
                    d_pred = d.pred if every else torch.zeros_like(self.pred).index_copy_(0, sel, d.pred)
                    write_delta(self.pred, d_pred)
                    if self.retro is not None:
                        write_delta(self.retro, d_pred.transpose(1, 2))
                    loss = d.loss
        self._remember(x, a, f.modulator, g.stimulus, z, pending)
        return loss

    def _encoder_delta(self, x: torch.Tensor, a: torch.Tensor, ctx: torch.Tensor, d: ClappFactors) -> torch.Tensor:
        """dW of this event: the target's term and, immediate, its contexts' terms; deferred, the contexts' factors
        join their glimpses' sums and the glimpse leaving the window (event T - max(offsets), in the slot the
        current event will take) is applied with its sum, once the history is that long."""
        if self.deferred:
            self.past_d.index_add_(0, ctx, d.context)
            ctx = ctx[:0] if self.count < self.depth else self._slots([self.depth - 1])
            d_ctx = self.past_d[ctx]
        else:
            d_ctx = d.context
        return dendritic_update(self.layer, torch.cat([x, self.past_x[ctx].flatten(0, 1)]),
                                torch.cat([a, self.past_a[ctx].flatten(0, 1)]),
                                torch.cat([d.target, d_ctx.flatten(0, 1)]), 1 / x.shape[0])

    @torch.no_grad()
    def _remember(self, *now: torch.Tensor | None) -> None:
        """Write this event (x, a, m, stimulus, z, context-factor sum or None) over the oldest slot."""
        self.head = (self.head + 1) % self.depth
        self.count = min(self.count + 1, self.depth)
        for name, t in zip(HISTORY, now):
            if t is None:
                continue
            past = getattr(self, name)
            if past.numel() == 0:  # the first event gives the shapes
                past = self._ring(t.shape, t.dtype)
                setattr(self, name, past)
            past[self.head].copy_(t.detach())


@RULES.register("clapp_s")
class ClappS(Clapp):
    """CLAPP-s: CLAPP with the retrograde weights tied to the transposed prediction weights."""

    transpose_retro = True
