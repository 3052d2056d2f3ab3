"""CLAPP and CLAPP-s (Illing et al. 2021) as released (EPFL-LCN/pub-illing2021-neurips @73671e1): each
layer predicts its own representation of a glimpse taken further down the same column of the gaze grid.

For one layer, ``z = mean_pos transmit(rho(W x))`` [C] is a glimpse's representation (the mean over
positions of what the layer transmits, after its pooling). A *pair* joins a target glimpse at grid
point g with the same eye's earlier context glimpse at the point ``k`` lattice steps before g along the
raster's axis (:meth:`GazeSpace.before`; for images: k rows above, same column), remembered from the last
``window`` events, the eye having stayed on its stimulus in between (no broadcast modulator -1 or 0).
Pairs are defined by gaze geometry, not by event count: under any policy a target is paired with the
remembered glimpses that sit k steps before it (under the raster: the glimpse k events earlier, and
never one in another column).

Scores ``u1 = z^T P_k c`` (prediction of the target from the context; the reference's ``c^T W_k z`` with
P_k = W_k^T) and, for the learned retrograde path, ``u2 = c^T R_k z``. Each is trained with its own hinge
``max(0, margin - y u)``, ``y = +1`` for a positive pair and ``-1`` for a negative, and gate
``gamma = y [y u < margin]``. Negatives (``negatives``): ``"location"``: the context is scored against the
target of a partner eye at the same grid point at the same event (one partner per eye, offset and hinge,
drawn once per stimulus presentation within the eye's logical shard; it may be the eye itself, as in
the reference); ``"jump"``: a pair whose eye jumped to another stimulus between context and target is a
negative (y = -1, the Eye's broadcast modulator). ``sampling = "either"``: per presentation and hinge,
each eye contributes only its positive or only its negative pairs (50/50); ``"both"``: all.

Every pair is weighted ``w = 1 / (N_k K n)`` (N_k grid points that have a k-context, K offsets, n eyes
selected for that hinge and sign), so that the changes of the events of one raster pass sum to the
gradient of the reference loss ``sum_k mean_selected-eyes mean_positions hinge / K``. The updates
(ascending, i.e. minus the loss gradient; e = d z / d a the post-synaptic factor, through the pool):

    dP_k = sum w gamma1 z c^T          target term   dW_j += w gamma1 (P_k c)_j e_j x          (u1; c fixed)
    dR_k = sum w gamma2 c z^T          context term  dW_j += w gamma2 (R_k z)_j e_j^c x^c      (u2; z fixed)

``retrograde``: ``"own_hinge"`` (CLAPP as released: R_k learns through u2 and its own gate),
``"shared_gate"`` (the paper's rule: the context term and dR use u1's gate; with it and Adam, R - P^T
keeps its initial value), ``"transpose"`` (CLAPP-s: R_k = P_k^T, gate of u1; dW is the exact gradient of
the hinge of u1). A trained conv bias gets the same factors with x = 1.

``timing``: ``"immediate"`` applies the context terms at the target's event (a weight-gradient call over
(1 + K) B glimpses); ``"deferred"`` keeps each glimpse's eligibility (x and a) while it can be a context,
sums the context factors it receives and applies them once, when it leaves the window: one call over 2B
glimpses per event and the same total change. Each remembered glimpse keeps x, a, z, its modulator and grid cell.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from saccade_sim.errors import ConfigError
from saccade_sim.events import Glimpse
from saccade_sim.gaze import GazeSpace
from saccade_sim.registry import RULES

from .base import BIAS, WEIGHT, Factors, Rule, Step
from .hebbian import correlation

if TYPE_CHECKING:  # annotations only: a rule is given its layer, it does not build one
    from ..layers import Layer


#: per-eye ring buffers (dim 1 = eyes) over the last ``window`` events
HISTORY = ("past_x", "past_a", "past_z", "past_m", "past_cell", "past_d")


def pooled(y: torch.Tensor) -> torch.Tensor:
    """z = mean over positions of y: [B, C, H, W] -> [B, C]; dense outputs [B, C] are returned as they are."""
    return y.flatten(2).mean(2) if y.dim() > 2 else y


def representation(layer: Layer, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """z = mean_pos transmit(output(a)) [B, C] and the post-synaptic factor e = dz_j / da_j [B, C, ...]
    (rho' routed through the layer's pooling; one local backward pass, nothing crosses layers)."""
    a = a.detach().requires_grad_(True)
    with torch.enable_grad():
        z = pooled(layer.transmit(layer.output(a)))
        (e,) = torch.autograd.grad(z.sum(), a)
    return z.detach(), e


class PairSet(NamedTuple):
    """Pairs of one hinge: for sign s (0 positive, 1 negative), offset k and context eye b: the eye whose
    current glimpse is the target, the label y (+1, -1; 0 = no pair) and the weight w, each [S, K, B]."""

    target: torch.Tensor
    y: torch.Tensor
    weight: torch.Tensor


def context_slots(past_cell: torch.Tensor, past_m: torch.Tensor, ages: torch.Tensor, cell: torch.Tensor,
                  modulator: torch.Tensor, before: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For each offset k and eye b: the ring slot of the most recent remembered glimpse at grid point
    ``before[k, cell_b]``, whether there is one, and whether the eye jumped (a modulator -1) after it.

    ``past_cell``, ``past_m`` [D, B] by slot; ``ages`` [D] the slot of the event T-1-i at position i (only the
    filled ones); ``cell`` and ``modulator`` [B] of event T; ``before`` [K, G + 1] (last column: off-grid).
    Returns (slot [K, B] long, found [K, B] bool, jumped [K, B] bool); a pair whose events after the context
    include a modulator 0 (no learning signal) is not found."""
    want = before[:, cell]  # [K, B]
    cells = past_cell[ages]  # [D, B], most recent first
    match = (cells[:, None, :] == want[None]) & (want >= 0)[None]  # [D, K, B]
    found = match.any(0)
    age = match.to(torch.uint8).argmax(0)  # the first (most recent) match
    m = torch.cat([modulator[None], past_m[ages]])  # row j: event T-j
    jumped = (m < 0).cumsum(0)[age, torch.arange(m.shape[1], device=m.device)]
    silent = (m == 0).cumsum(0)[age, torch.arange(m.shape[1], device=m.device)]
    return ages[age], found & (silent == 0), jumped > 0


def make_pairs(found: torch.Tensor, jumped: torch.Tensor, cell: torch.Tensor, negatives: str, sampling: str,
               partner: torch.Tensor | None, pick_positive: torch.Tensor | None, scale: torch.Tensor,
               shard_size: int) -> PairSet:
    """The pairs of one hinge (module docstring). ``found``, ``jumped`` [K, B]; ``partner`` [K, B] long (the
    eye whose target is the negative, ``negatives = "location"``); ``pick_positive`` [B] bool (``sampling =
    "either"``); ``scale`` [K] = N_k K. Weights are 1 / (N_k K n), n the eyes of the eye's logical shard
    selected for that sign (the caller divides the sum by the number of shards: the mean over shards of each
    shard's mean, so that ranks holding different shards average to the whole batch's; with one shard, the
    reference's mean over the batch)."""
    k, b = found.shape
    eyes = torch.arange(b, device=found.device).expand(k, b)
    one = torch.ones_like(found, dtype=scale.dtype)
    if negatives == "jump":
        y = torch.where(jumped, -one, one) * found
        targets, labels = eyes[None], y[None]
        chosen = torch.ones(1, b, dtype=torch.bool, device=found.device)
    else:
        same_place = cell[partner] == cell
        targets = torch.stack([eyes, partner])
        labels = torch.stack([one * (found & ~jumped), -one * (found & ~jumped & same_place)])
        chosen = torch.ones(2, b, dtype=torch.bool, device=found.device)
        if sampling == "either":
            chosen = torch.stack([pick_positive, ~pick_positive])
    labels = labels * chosen[:, None, :]
    n = chosen.view(len(chosen), b // shard_size, shard_size).sum(2).clamp_min(1).repeat_interleave(shard_size, 1)
    weight = 1.0 / (scale[None, :, None] * n.to(scale.dtype)[:, None, :])  # n: [S, B]
    return PairSet(targets, labels, weight.expand_as(labels))


def hinge_gates(zt: torch.Tensor, mc: torch.Tensor, pairs: PairSet, margin: float) -> tuple[torch.Tensor, torch.Tensor]:
    """u = zt^T (M_k cc) for every pair, from the targets ``zt`` [S, K, B, C] and ``mc`` = M_k cc [K, B, C]; returns
    the weighted gates w gamma = w y [y u < margin] [S, K, B] and each pair's weighted hinge w max(0, margin - y u)
    [S, K, B] (dim 2: the context's eye)."""
    u = (zt * mc[None]).sum(-1)
    y = pairs.y
    gamma = y * (y * u < margin).to(u.dtype)
    return pairs.weight * gamma, pairs.weight * F.relu(margin - y * u) * (y != 0).to(u.dtype)


class ClappFactors(NamedTuple):
    """One event's factors: ``target`` [B, C] the dendritic factor of each current glimpse (sum over its pairs of
    w gamma1 P c), ``context`` [K, B, C] that of each context (w gamma2 R z), ``pred`` dP and ``retro`` dR
    [K, C, C] (None for CLAPP-s), the weighted hinge ``loss`` and ``hinges``, each hinge's pairs' terms [S, K, B]
    (their sum is ``loss``)."""

    target: torch.Tensor
    context: torch.Tensor
    pred: torch.Tensor
    retro: torch.Tensor | None
    loss: torch.Tensor
    hinges: tuple[torch.Tensor, ...]


def _apply(mat: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """M_k v_kb for M [K, C, C], v [K, B, C] -> [K, B, C]."""
    return torch.bmm(v, mat.transpose(1, 2))


def _outer(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """sum_b a_kb b_kb^T for a, b [K, B, C] -> [K, C, C]."""
    return torch.bmm(a.transpose(1, 2), b)


def clapp_factors(z: torch.Tensor, c: torch.Tensor, pred: torch.Tensor, retro: torch.Tensor | None,
                  main: PairSet, mirror: PairSet | None, retrograde: str, margin: float) -> ClappFactors:
    """The factors of :class:`ClappFactors` from the targets' ``z`` [B, C], the contexts' ``c`` [K, B, C], P and R
    [K, C, C], the pairs of the prediction hinge (``main``) and of the retrograde hinge (``mirror``, own_hinge)."""
    zt = z[main.target]  # [S, K, B, C]
    pc = _apply(pred, c)  # the dendritic prediction of each context's target: P_k c
    g1, h1 = hinge_gates(zt, pc, main, margin)
    loss = h1.sum()
    d_target = torch.zeros_like(z).index_add_(0, main.target.flatten(), (g1[..., None] * pc[None]).flatten(0, 2))
    gz = (g1[..., None] * zt).sum(0)  # sum over the pair's signs of w gamma1 z: [K, B, C]
    d_pred = _outer(gz, c)
    if retrograde == "own_hinge":
        zm = z[mirror.target]
        g2, h2 = hinge_gates(zm, _apply(retro.transpose(1, 2), c), mirror, margin)  # u2 = c^T R z = z^T (R^T c)
        gm = (g2[..., None] * zm).sum(0)
        return ClappFactors(d_target, _apply(retro, gm), d_pred, _outer(c, gm), loss + h2.sum(), (h1, h2))
    back = pred.transpose(1, 2) if retrograde == "transpose" else retro
    return ClappFactors(d_target, _apply(back, gz), d_pred, None if retro is None else d_pred.transpose(1, 2), loss,
                        (h1,))


def dendritic_update(layer: Layer, x: torch.Tensor, e: torch.Tensor, d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(dW, db) = (sum_b (d_b * e_b) (x) x_b, sum_b,pos d_b e_b): the dendritic factors ``d`` [N, C] times the
    post-synaptic factors ``e`` [N, C, ...] correlated with the inputs ``x`` [N, ...] (conv: input patches)."""
    post = e * d.view(*d.shape, *[1] * (e.dim() - 2))
    d_bias = None if layer.op.bias is None else post.transpose(0, 1).flatten(1).sum(1)
    return correlation(layer, x, post), d_bias


@dataclass
class ClappOptions:
    offsets: list[int] = field(default_factory=lambda: [2, 3, 4, 5, 6])  #: grid steps from context to target
    negatives: str = "location"  #: "location" (another eye's target at the same grid point) or "jump"
    sampling: str = "either"  #: "either" (each eye: its positive or its negative pairs, 50/50) or "both"
    retrograde: str = "own_hinge"  #: "own_hinge" (released), "shared_gate" (the paper) or "transpose" (CLAPP-s)
    margin: float = 1.0  #: hinge margin: no plasticity once y u >= margin
    timing: str = "deferred"  #: context terms applied "immediate"-ly or "deferred" to the glimpse's expiry
    window: int = 0  #: events a glimpse is remembered as a possible context (0 = max(offsets))

    def validate(self, path: str) -> None:
        if not self.offsets or any(k < 1 for k in self.offsets) or len(set(self.offsets)) != len(self.offsets):
            raise ConfigError(f"{path}.offsets: expected distinct integers >= 1, got {self.offsets!r}")
        for name, valid in (("negatives", ("location", "jump")), ("sampling", ("either", "both")),
                            ("retrograde", ("own_hinge", "shared_gate", "transpose")),
                            ("timing", ("immediate", "deferred"))):
            if getattr(self, name) not in valid:
                raise ConfigError(f"{path}.{name}: unknown value {getattr(self, name)!r}; "
                                  f"valid choices: {', '.join(valid)}")
        if self.margin <= 0:
            raise ConfigError(f"{path}.margin: must be > 0, got {self.margin}")
        if self.window and self.window < max(self.offsets):
            raise ConfigError(f"{path}.window: must be 0 or >= max(offsets) = {max(self.offsets)}, got {self.window}")
        if self.negatives == "jump" and self.sampling == "either":
            raise ConfigError(f"{path}.sampling: \"either\" needs negatives = \"location\" (with \"jump\" an eye's "
                              "pairs are positive or negative by its own jumps); set sampling = \"both\"")

    @property
    def hinges(self) -> int:
        """1, or 2 with the retrograde hinge of its own."""
        return 2 if self.retrograde == "own_hinge" else 1


@RULES.register("clapp")
class Clapp(Rule):
    """CLAPP as released: hinge-gated prediction of the layer's own glimpse further down the column, learned
    retrograde weights with their own hinge, partner-eye negatives at the same grid point, 50/50 updates."""

    Options = ClappOptions
    #: the named state: the ring buffers of the last ``depth`` events (per eye) and the ring's newest slot and fill
    state_names = HISTORY + ("head", "count")
    eye_buffers = HISTORY
    default_optimizer = "adam"  #: as the reference (Adam, lr 2e-4 per layer)
    default_lr = 2e-4  #: the reference's

    @classmethod
    def draws_needed(cls, options: ClappOptions) -> int:
        """Per presentation: a partner per offset and hinge ("location"), and a 50/50 pick per hinge ("either")."""
        k = len(options.offsets)
        return options.hinges * ((k if options.negatives == "location" else 0) + (options.sampling == "either"))

    def __init__(self, layer: Layer, options: ClappOptions, index: int, n_layers: int) -> None:
        super().__init__(layer, options, index, n_layers)
        n, k = layer.spec.channels, len(options.offsets)
        bound = 1.0 / math.sqrt(n)
        self.pred = nn.Parameter(torch.empty(k, n, n).uniform_(-bound, bound))
        self.retro = None if options.retrograde == "transpose" else nn.Parameter(torch.empty(k, n, n).uniform_(-bound, bound))
        for name in HISTORY:  # ring buffers of the last `window` events, allocated at the first event
            self.register_buffer(name, torch.empty(0))
        self.register_buffer("before", torch.empty(0, dtype=torch.long), persistent=False)
        self.register_buffer("pair_scale", torch.empty(0), persistent=False)
        self.head = -1  #: slot of the newest remembered event
        self.count = 0  #: events remembered (at most ``depth``)
        self.draw_columns = slice(0, 0)
        self.shard_size = 0
        self.last_prediction: torch.Tensor | None = None
        self.last_hinges: tuple[torch.Tensor, ...] = ()  #: the last event's pair terms (:meth:`eye_loss`)
        self.last_batch = 0

    def bind(self, space: GazeSpace, draws: slice, shard_size: int) -> None:
        """Take the grid's geometry (which point is k steps before which), this rule's columns of the Eye's
        per-presentation draws and the eyes per logical shard (partners are drawn within a shard)."""
        before = torch.stack([space.before(k) for k in self.options.offsets])  # [K, G]
        counts = (before >= 0).sum(1)
        if not bool((counts > 0).any()):
            raise ConfigError(f"rule.offsets: the {space.size}-point gaze grid has no two points "
                              f"{self.options.offsets} steps apart along its axis; use smaller offsets or a finer grid")
        if not bool((counts > 0).all()):
            unused = [k for k, n in zip(self.options.offsets, counts.tolist()) if n == 0]
            warnings.warn(f"rule.offsets {unused}: no such pairs on the {space.size}-point gaze grid; those "
                          "offsets are not used", stacklevel=2)
        # N_k K (K the offsets in use); the unused offsets' pairs are weighted 0 (their P_k, R_k never change)
        scale = torch.where(counts > 0, counts.double() * int((counts > 0).sum()), math.inf)
        self.pair_scale = scale.to(self.pred.dtype).to(self.pred.device)
        self.before = torch.cat([before, before.new_full((len(before), 1), -1)], 1).to(self.pred.device)
        self.space = GazeSpace(space.grid.to(self.pred.device), space.high)
        self.draw_columns, self.shard_size = draws, shard_size

    @property
    def depth(self) -> int:
        return self.options.window or max(self.options.offsets)

    @property
    def deferred(self) -> bool:
        return self.options.timing == "deferred"

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
        """A ring buffer [depth, *slot_shape] on the rule's device (cells start at -1: no glimpse) whose slots
        are channels_last where the layer computes in it (mixed memory formats made the weight gradient 2x slower)."""
        fmt = torch.channels_last if len(slot_shape) == 4 and self.layer.channels_last else torch.contiguous_format
        slot = torch.empty(slot_shape, dtype=dtype, device=self.pred.device, memory_format=fmt)
        ring = slot.new_empty_strided((self.depth, *slot_shape), (slot.numel(), *slot.stride()))
        return ring.fill_(-1) if dtype == torch.long else ring.zero_()

    def reset(self) -> None:
        for name in HISTORY:
            setattr(self, name, torch.empty(0, device=self.pred.device))
        self.head, self.count = -1, 0

    def dendritic_prediction(self) -> torch.Tensor | None:
        """sum_k P_k c_k [B, C]: the last event's prediction of each eye's target from its own found contexts."""
        return self.last_prediction

    def eye_loss(self) -> torch.Tensor:
        """[B]: each eye's part of the last event's loss, the hinge terms of the pairs whose context it holds,
        sum_{s,k} w max(0, margin - y u) / shards (summed over the eyes: the loss); zeros before any pair."""
        if not self.last_hinges:
            return torch.zeros(self.last_batch, device=self.pred.device)
        return sum(h.sum((0, 1)) for h in self.last_hinges) / (self.last_batch // self.shard_size)

    def _draws(self, g: Glimpse) -> tuple[list[torch.Tensor | None], list[torch.Tensor | None]]:
        """Per hinge: partners [K, B] (eyes of the same shard) and the 50/50 picks [B] from the Eye's draws."""
        o, k = self.options, len(self.options.offsets)
        cols = g.draws[:, self.draw_columns] if g.draws is not None else None
        partners, picks, at = [], [], 0
        b = g.stimulus.shape[0]
        start = torch.arange(b, device=g.stimulus.device) // self.shard_size * self.shard_size
        for _ in range(o.hinges):
            partner = pick = None
            if o.negatives == "location":
                u = cols[:, at:at + k].t()  # [K, B]
                partner = start + (u * self.shard_size).long().clamp_max(self.shard_size - 1)
                at += k
            if o.sampling == "either":
                pick, at = cols[:, at] < 0.5, at + 1
            partners.append(partner)
            picks.append(pick)
        return partners, picks

    def step(self, weights, state, f: Factors) -> Step:
        """This event's dW, db, dP, dR from the current glimpses' z and the contexts remembered in ``state``
        (module docstring), the history with this event written over its oldest slot, and the hinge loss
        (the mean over the batch's logical shards). The ring buffers are written in place (and returned)."""
        o, g = self.options, f.glimpse
        x = f.pre
        self.last_batch = x.shape[0]
        self.last_hinges = ()
        z, e = representation(self.layer, f.a)
        cell = self.space.cells(g.gaze)
        factors = slot = None
        pred, retro = weights["pred"], weights.get("retro")
        with torch.no_grad():
            if state["count"]:
                ages = self._slots(state["head"], range(state["count"]))
                off_grid = self.before.shape[1] - 1
                slot, found, jumped = context_slots(state["past_cell"], state["past_m"], ages,
                                                    cell.masked_fill(cell < 0, off_grid), f.modulator, self.before)
                eyes = torch.arange(x.shape[0], device=x.device)
                c = state["past_z"][slot, eyes]  # [K, B, C]
                sets = [make_pairs(found, jumped, cell, o.negatives, o.sampling, partner, pick, self.pair_scale,
                                   self.shard_size)
                        for partner, pick in zip(*self._draws(g))]
                factors = clapp_factors(z, c, pred, retro, sets[0], sets[-1], o.retrograde, o.margin)
                self.last_hinges = factors.hinges
                self.last_prediction = _apply(pred, c * (found & ~jumped)[..., None]).sum(0)
            updates = self._changes(weights, state, x, e, factors, slot)
            new_state = self._remember(state, x, f.a, z, f.modulator, cell, torch.zeros_like(z))
        loss = torch.zeros((), device=x.device) if factors is None else factors.loss / (x.shape[0] // self.shard_size)
        return Step(updates, new_state, loss)

    def _changes(self, weights, state, x: torch.Tensor, e: torch.Tensor, f: ClappFactors | None,
                 slot: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """dW, db, dP, dR of this event: the target terms and (immediate) the contexts' terms, or (deferred) the
        contexts' factors join their glimpses' sums and the glimpse leaving the window (the slot the current
        event will take, once the history is full) is applied with its sum."""
        eyes = torch.arange(x.shape[0], device=x.device)
        xs, es, ds = [x], [e], [torch.zeros(e.shape[:2], dtype=e.dtype, device=e.device) if f is None else f.target]
        if self.deferred:
            if f is not None:
                state["past_d"].index_put_((slot, eyes.expand_as(slot)), f.context, accumulate=True)
            if state["count"] == self.depth:
                leaving = (state["head"] + 1) % self.depth
                xs, es = xs + [state["past_x"][leaving]], es + [representation(self.layer, state["past_a"][leaving])[1]]
                ds = ds + [state["past_d"][leaving]]
        elif f is not None:
            xs.append(state["past_x"][slot, eyes].flatten(0, 1))
            es.append(representation(self.layer, state["past_a"][slot, eyes].flatten(0, 1))[1])
            ds.append(f.context.flatten(0, 1))
        shards = x.shape[0] // self.shard_size  # the mean over this batch's logical shards
        d_w, d_b = dendritic_update(self.layer, torch.cat(xs), torch.cat(es), torch.cat(ds) / shards)
        pred, retro = weights["pred"], weights.get("retro")
        updates = {WEIGHT: self.layer.masked(d_w), "pred": torch.zeros_like(pred) if f is None else f.pred / shards}
        if d_b is not None:
            updates[BIAS] = d_b
        if retro is not None:
            updates["retro"] = torch.zeros_like(retro) if f is None else f.retro / shards
        return updates

    def _slots(self, head: int, ages) -> torch.Tensor:
        """Ring-buffer slots of the events T-1-i, i in ``ages``, ``head`` the newest slot."""
        return torch.tensor([(head - i) % self.depth for i in ages], device=self.pred.device)

    def _remember(self, state, *now: torch.Tensor) -> dict[str, Any]:
        """The history with this event (x, a, z, modulator, cell, an empty context-factor sum) written over its
        oldest slot (in place; the first event allocates the rings)."""
        head = (state["head"] + 1) % self.depth
        new = {"head": head, "count": min(state["count"] + 1, self.depth)}
        for name, t in zip(HISTORY, now):
            past = state[name]
            if past.numel() == 0:  # the first event gives the shapes
                past = self._ring(t.shape, t.dtype)
            past[head].copy_(t.detach())
            new[name] = past
        return new


@dataclass
class ClappSOptions(ClappOptions):
    retrograde: str = "transpose"  #: CLAPP-s: R_k = P_k^T
    sampling: str = "both"  #: CLAPP-s as released: positive and negative updates of every eye


@RULES.register("clapp_s")
class ClappS(Clapp):
    """CLAPP-s: CLAPP with the retrograde weights tied to the transposed prediction weights (not fully local)."""

    Options = ClappSOptions
