"""CLAPP and CLAPP-s (Illing et al. 2021) as released (EPFL-LCN/pub-illing2021-neurips @73671e1): each
layer predicts its own representation of a glimpse taken further down the same column of the gaze grid.

For one layer, ``z = mean_pos transmit(rho(W x))`` [C] is a glimpse's representation (the mean over
positions of what the layer transmits, after its pooling). A *pair* joins a target glimpse at grid
point g with the same eye's earlier context glimpse at the point ``k`` lattice steps before g along the
raster's axis (:meth:`GazeSpace.before`; for images: k rows above, same column), remembered from the last
``window`` fixations of that eye, the eye having stayed on its stimulus in between (no broadcast modulator -1
or 0). Each eye has its own history: with asynchronous eyes an event holds some eyes of the batch
(``Glimpse.eyes``), and only their histories advance, so an eye's pairs are those of its own fixation sequence.
Pairs are defined by gaze geometry, not by event count: under any policy a target is paired with the
remembered glimpses that sit k steps before it (under the raster: the glimpse k events earlier, and
never one in another column).

Scores ``u1 = z^T P_k c`` (prediction of the target from the context; the reference's ``c^T W_k z`` with
P_k = W_k^T) and, for the learned retrograde path, ``u2 = c^T R_k z``. Each is trained with its own hinge
``max(0, margin - y u)``, ``y = +1`` for a positive pair and ``-1`` for a negative, and gate
``gamma = y [y u < margin]``. Negatives (``negatives``): ``"location"``: the context is scored against the
partner eye's current glimpse when it is at the same grid point (one partner per eye, offset and hinge,
drawn once per stimulus presentation within the eye's logical shard; it may be the eye itself, as in
the reference): lockstep eyes, its glimpse of the same event; an asynchronous partner that is not in the event,
its newest fixation (whose target term joins that glimpse's: applied now, or to its sum when deferred); ``"jump"``: a pair whose eye jumped to another stimulus between context and target is a
negative (y = -1, the Eye's broadcast modulator). ``sampling = "either"``: per presentation and hinge,
each eye contributes only its positive or only its negative pairs (50/50); ``"both"``: all.

Every pair is weighted ``w = 1 / (N_k K n)`` (N_k grid points that have a k-context, K offsets, n eyes
of the event in the eye's logical shard selected for that hinge and sign; the event's sum is divided by the
number of shards in the event), so that the changes of the events of one raster pass sum to the
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
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from saccade_sim.errors import ConfigError
from saccade_sim.events import Glimpse
from saccade_sim.gaze import GazeSpace
from saccade_sim.registry import RULES

from .base import BIAS, WEIGHT, Factors, Rule, Step, Write
from .hebbian import correlation

if TYPE_CHECKING:  # annotations only: a rule is given its layer, it does not build one
    from ..layers import Layer


#: per-eye ring buffers [depth, eyes, ...]: each eye's last ``window`` fixations
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


def context_slots(cells: torch.Tensor, mods: torch.Tensor, cell: torch.Tensor, modulator: torch.Tensor,
                  before: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For each offset k and eye b: the age of the eye's most recent remembered glimpse at grid point
    ``before[k, cell_b]``, whether there is one, and whether the eye jumped (a modulator -1) after it.

    ``cells``, ``mods`` [D, B]: the grid cell and modulator of each eye's own fixation T-1-i at row i (a slot
    never written has cell -1); ``cell`` and ``modulator`` [B] of its fixation T; ``before`` [K, G + 1] (last
    column: off-grid). Returns (age [K, B] long, found [K, B] bool, jumped [K, B] bool); a pair whose fixations
    after the context include a modulator 0 (no learning signal) is not found."""
    want = before[:, cell]  # [K, B]
    match = (cells[:, None, :] == want[None]) & (want >= 0)[None]  # [D, K, B]
    found = match.any(0)
    age = match.to(torch.uint8).argmax(0)  # the first (most recent) match
    m = torch.cat([modulator[None], mods])  # row j: fixation T-j
    jumped = (m < 0).cumsum(0)[age, torch.arange(m.shape[1], device=m.device)]
    silent = (m == 0).cumsum(0)[age, torch.arange(m.shape[1], device=m.device)]
    return age, found & (silent == 0), jumped > 0


def make_pairs(found: torch.Tensor, jumped: torch.Tensor, eyes: torch.Tensor, cell: torch.Tensor,
               newest_cell: torch.Tensor, negatives: str, sampling: str, partner: torch.Tensor | None,
               pick_positive: torch.Tensor | None, scale: torch.Tensor, shard: torch.Tensor) -> PairSet:
    """The pairs of one hinge (module docstring) of the eyes ``eyes`` [B] (their indices in the batch) whose
    current glimpses are at grid cells ``cell`` [B]. ``found``, ``jumped`` [K, B]; ``newest_cell`` [E] the cell
    of every eye's newest glimpse (E the eyes of the batch); ``partner`` [K, B] long (the eye whose newest glimpse
    is the negative target, ``negatives = "location"``); ``pick_positive`` [B] bool (``sampling = "either"``);
    ``scale`` [K] = N_k K; ``shard`` [B] each eye's logical shard. Weights are 1 / (N_k K n), n the eyes of the
    event in the eye's logical shard selected for that sign (the caller divides the sum by the number of shards:
    the mean over shards of each reference's mean over the batch). Targets are indices into the batch."""
    k, b = found.shape
    targets = eyes.expand(k, b)
    one = torch.ones_like(found, dtype=scale.dtype)
    if negatives == "jump":
        y = torch.where(jumped, -one, one) * found
        targets, labels = targets[None], y[None]
        chosen = torch.ones(1, b, dtype=torch.bool, device=found.device)
    else:
        same_place = newest_cell[partner] == cell
        targets = torch.stack([targets, partner])
        labels = torch.stack([one * (found & ~jumped), -one * (found & ~jumped & same_place)])
        chosen = torch.ones(2, b, dtype=torch.bool, device=found.device)
        if sampling == "either":
            chosen = torch.stack([pick_positive, ~pick_positive])
    labels = labels * chosen[:, None, :]
    same_shard = shard[:, None] == shard[None, :]  # [B, B]
    n = (same_shard[None] & chosen[:, None, :]).sum(2).clamp_min(1)  # [S, B]
    weight = 1.0 / (scale[None, :, None] * n.to(scale.dtype)[:, None, :])
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
    #: the named state: each eye's ring buffers of its last ``depth`` fixations and its fixations remembered
    state_names = HISTORY + ("seen",)
    eye_buffers = HISTORY + ("seen",)
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
        for name in HISTORY:  # ring buffers [depth, eyes, ...], allocated at the first event
            self.register_buffer(name, torch.empty(0))
        #: [1, eyes]: fixations remembered per eye (eye b's newest is in slot (seen_b - 1) % depth)
        self.register_buffer("seen", torch.zeros(1, 0, dtype=torch.long))
        self.register_buffer("before", torch.empty(0, dtype=torch.long), persistent=False)
        self.register_buffer("pair_scale", torch.empty(0), persistent=False)
        self.draw_columns = slice(0, 0)
        self.shard_size = 0
        #: the host's copy of recent ``seen`` tensors (a memo: the step that made them knew them on the host)
        self._host_seen: deque[tuple[torch.Tensor, int, np.ndarray]] = deque(maxlen=2)

    def bind(self, space: GazeSpace, draws: slice, shard_size: int, batch: int = 0) -> None:
        """Take the grid's geometry (which point is k steps before which), this rule's columns of the Eye's
        per-presentation draws, the eyes per logical shard (partners are drawn within a shard) and the eyes of
        the batch (0: one shard)."""
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
        self.seen = torch.zeros(1, batch or shard_size, dtype=torch.long, device=self.pred.device)
        self._known_on_host(self.seen, np.zeros(self.seen.shape[1], dtype=np.int64))

    @property
    def depth(self) -> int:
        return self.options.window or max(self.options.offsets)

    @property
    def deferred(self) -> bool:
        return self.options.timing == "deferred"

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
        self.seen = torch.zeros_like(self.seen)
        self._known_on_host(self.seen, np.zeros(self.seen.shape[1], dtype=np.int64))

    def _known_on_host(self, seen: torch.Tensor, counts: np.ndarray) -> None:
        """Remember that the fixation counts ``seen`` [1, E] (a device tensor) hold ``counts`` [E]."""
        self._host_seen.append((seen, seen._version, counts))

    def seen_on_host(self, seen: torch.Tensor) -> np.ndarray:
        """The fixation counts ``seen`` [1, E] as a host array [E]: known without reading the device when ``seen``
        was made by :meth:`bind`, :meth:`reset` or a step; else (a loaded checkpoint, a module moved to another device)
        read from the device once."""
        for tensor, version, counts in self._host_seen:
            if tensor is seen and version == seen._version:
                return counts
        counts = seen[0].cpu().numpy()
        self._known_on_host(seen, counts)
        return counts

    def dendritic_prediction(self) -> torch.Tensor | None:
        """sum_k P_k c_k [B, C]: the last event's prediction of each eye's target from its own found contexts."""
        return self.diagnostics.get("prediction")

    def eye_loss(self) -> torch.Tensor:
        """[B]: each eye's part of the last event's loss, the hinge terms of the pairs whose context it holds,
        sum_{s,k} w max(0, margin - y u) / shards (summed over the eyes: the loss); zeros before any pair."""
        hinges = self.diagnostics.get("hinges")
        if hinges is None:
            return torch.zeros(self.diagnostics.get("batch", 0), device=self.pred.device)
        return sum(h.sum((0, 1)) for h in hinges) / self.diagnostics["shards"]

    def _draws(self, g: Glimpse, eyes: torch.Tensor) -> tuple[list[torch.Tensor | None], list[torch.Tensor | None]]:
        """Per hinge: partners [K, B] (eyes of the same shard) and the 50/50 picks [B] from the Eye's draws."""
        o, k = self.options, len(self.options.offsets)
        cols = g.draws[:, self.draw_columns] if g.draws is not None else None
        partners, picks, at = [], [], 0
        start = eyes // self.shard_size * self.shard_size
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
        """This event's dW, db, dP, dR from the current glimpses' z and the contexts each eye of the event
        remembers in ``state`` (module docstring), the new fixation counts, the hinge loss (the mean over the
        event's logical shards), the rows to write (the context factors added to their glimpses' sums, each eye's
        fixation over its oldest slot) and the diagnostics (each hinge's pair terms, the prediction). Pure: the
        ring buffers are read, never written (the new counts' host copy goes to a memo that changes no result). What
        the host needs (any history yet, whose ring is full, the shards, the absent eyes) comes from the counts'
        host copy (:meth:`seen_on_host`), not from the device."""
        o, g = self.options, f.glimpse
        x = f.pre
        eyes, on_host = present_eyes(g, x.shape[0], x.device)
        counts = self.seen_on_host(state["seen"])
        seen, seen_host = state["seen"][0, eyes], counts[on_host]  # each eye's fixations remembered
        shards = len(np.unique(on_host // self.shard_size))
        diagnostics = {"batch": x.shape[0], "shards": shards}
        z, e = representation(self.layer, f.a)
        cell = self.space.cells(g.gaze)
        factors = slot = None
        pred, retro = weights["pred"], weights.get("retro")
        with torch.no_grad():
            if seen_host.any():
                ages = (seen[None] - 1 - torch.arange(self.depth, device=x.device)[:, None]) % self.depth  # [D, B]
                off_grid = self.before.shape[1] - 1
                age, found, jumped = context_slots(state["past_cell"][ages, eyes], state["past_m"][ages, eyes],
                                                   cell.masked_fill(cell < 0, off_grid), f.modulator, self.before)
                slot = ages.gather(0, age)  # [K, B]
                c = state["past_z"][slot, eyes]  # [K, B, C]
                newest_z, newest_cell = self._newest(state, eyes, z, cell)
                sets = [make_pairs(found, jumped, eyes, cell, newest_cell, o.negatives, o.sampling, partner, pick,
                                   self.pair_scale, eyes // self.shard_size)
                        for partner, pick in zip(*self._draws(g, eyes))]
                factors = clapp_factors(newest_z, c, pred, retro, sets[0], sets[-1], o.retrograde, o.margin)
                diagnostics.update(hinges=factors.hinges,
                                   prediction=_apply(pred, c * (found & ~jumped)[..., None]).sum(0))
            updates, sums = self._changes(weights, state, x, e, factors, slot, eyes, seen, counts, on_host, shards)
            new_state, rows = self._remember(state, eyes, seen, x, f.a, z, f.modulator, cell, torch.zeros_like(z))
        self._known_on_host(new_state["seen"], counts + np.bincount(on_host, minlength=len(counts)))
        loss = torch.zeros((), device=x.device) if factors is None else factors.loss / shards
        return Step(updates, new_state, loss, sums + rows, diagnostics)

    def _newest(self, state, eyes: torch.Tensor, z: torch.Tensor, cell: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z [E, C] and cell [E] of every eye's newest glimpse: this event's for the eyes in it, else the newest
        remembered (cell -1: none)."""
        if len(eyes) == state["seen"].shape[1]:  # every eye fixated
            return z, cell
        every = torch.arange(state["seen"].shape[1], device=z.device)
        head = (state["seen"][0] - 1) % self.depth
        newest_z, newest_cell = state["past_z"][head, every], state["past_cell"][head, every]
        newest_z[eyes], newest_cell[eyes] = z, cell
        return newest_z, newest_cell

    def _changes(self, weights, state, x: torch.Tensor, e: torch.Tensor, f: ClappFactors | None,
                 slot: torch.Tensor | None, eyes: torch.Tensor, seen: torch.Tensor, counts: np.ndarray,
                 on_host: np.ndarray, shards: int) -> tuple[dict[str, torch.Tensor], tuple[Write, ...]]:
        """dW, db, dP, dR of this event: the target terms and (immediate) the contexts' terms, or (deferred) the
        contexts' factors join their glimpses' sums (the rows returned to add) and the glimpses leaving their eyes'
        windows (the slots this fixation will take, for the eyes whose histories are full) are applied with their
        sums, this event's factors included. A location negative whose partner is not in the event targets the
        partner's newest remembered glimpse. ``counts`` [E] every eye's fixations remembered and ``on_host`` the
        event's eyes, on the host."""
        every = state["seen"].shape[1]
        if f is None:
            d = torch.zeros(e.shape[:2], dtype=e.dtype, device=e.device)
        else:
            d = f.target if len(eyes) == every else f.target[eyes]
        xs, es, ds = [x], [e], [d]
        absent = None
        if f is not None and len(eyes) < every and self.options.negatives == "location":
            # the eyes not in the event with a remembered glimpse, as a mask over every eye (on the device: no
            # index set to build on the host and copy); the others' rows enter with the factor 0
            remembered = state["seen"][0]
            absent = (remembered > 0).index_fill(0, eyes, False)
            head, everyone = (remembered - 1) % self.depth, torch.arange(every, device=e.device)
            absent_d = f.target * absent[:, None].to(f.target.dtype)
        sums: tuple[Write, ...] = ()
        if self.deferred:
            if f is not None:
                sums = (Write("past_d", (slot, eyes.expand_as(slot)), f.context, add=True),)
                if absent is not None:
                    sums += (Write("past_d", (head, everyone), absent_d, add=True),)
            full = counts[on_host] >= self.depth
            if full.any():
                leaving = seen % self.depth
                leaving_d = state["past_d"][leaving, eyes]
                if f is not None:  # the context factors this event adds to the glimpses that leave now
                    leaving_d = leaving_d + (f.context * (slot == leaving)[..., None]).sum(0)
                if not full.all():  # only the eyes whose histories are full lose a glimpse (a mask: no index)
                    leaving_d = leaving_d * (seen >= self.depth)[:, None].to(leaving_d.dtype)
                xs.append(state["past_x"][leaving, eyes])
                es.append(representation(self.layer, state["past_a"][leaving, eyes])[1])
                ds.append(leaving_d)
        elif f is not None:
            xs.append(state["past_x"][slot, eyes].flatten(0, 1))
            es.append(representation(self.layer, state["past_a"][slot, eyes].flatten(0, 1))[1])
            ds.append(f.context.flatten(0, 1))
            if absent is not None:
                xs.append(state["past_x"][head, everyone])
                es.append(representation(self.layer, state["past_a"][head, everyone])[1])
                ds.append(absent_d)
        d_w, d_b = dendritic_update(self.layer, torch.cat(xs), torch.cat(es), torch.cat(ds) / shards)
        pred, retro = weights["pred"], weights.get("retro")
        updates = {WEIGHT: self.layer.masked(d_w), "pred": torch.zeros_like(pred) if f is None else f.pred / shards}
        if d_b is not None:
            updates[BIAS] = d_b
        if retro is not None:
            updates["retro"] = torch.zeros_like(retro) if f is None else f.retro / shards
        return updates, sums

    def _remember(self, state, eyes: torch.Tensor, seen: torch.Tensor,
                  *now: torch.Tensor) -> tuple[dict[str, Any], tuple[Write, ...]]:
        """The new fixation counts (and, at the first event, the empty rings) and the rows that write this
        fixation (x, a, z, modulator, cell, an empty context-factor sum) over each event eye's oldest slot."""
        slot = seen % self.depth
        new = {"seen": state["seen"].index_add(1, eyes, torch.ones_like(seen)[None])}
        for name, t in zip(HISTORY, now):
            if state[name].numel() == 0:  # the first event gives the shapes
                new[name] = self._ring((state["seen"].shape[1], *t.shape[1:]), t.dtype)
        return new, tuple(Write(name, (slot, eyes), t.detach()) for name, t in zip(HISTORY, now))


def present_eyes(g: Glimpse, batch: int, device: torch.device) -> tuple[torch.Tensor, np.ndarray]:
    """The indices in the batch of the event's eyes (``Glimpse.eyes``; all when None), on ``device`` and on the host
    (lockstep eyes: known there; asynchronous eyes: ``Glimpse.eyes_host``, the eye's own copy, or, for a Glimpse
    made without it, ``Glimpse.eyes`` read from the device: a sync)."""
    if g.eyes is None:
        return torch.arange(batch, device=device), np.arange(batch)
    return g.eyes, g.eyes.cpu().numpy() if g.eyes_host is None else g.eyes_host


@dataclass
class ClappSOptions(ClappOptions):
    retrograde: str = "transpose"  #: CLAPP-s: R_k = P_k^T
    sampling: str = "both"  #: CLAPP-s as released: positive and negative updates of every eye


@RULES.register("clapp_s")
class ClappS(Clapp):
    """CLAPP-s: CLAPP with the retrograde weights tied to the transposed prediction weights (not fully local)."""

    Options = ClappSOptions
