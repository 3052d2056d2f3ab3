"""Layer agents: the thin per-layer wrapper that a SimPy process drives, one event at a time."""
from __future__ import annotations

import functools
import math
from typing import Any

import torch

from saccade_sim.errors import DivergenceError
from saccade_sim.events import Glimpse
from saccade_sim.parts import WeightSync

from .dendrites import DendriticEdge
from .layers import Layer, join
from .rules.base import Factors, Rule


def make_optimizer(params: list[torch.nn.Parameter], name: str, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """The stock optimiser that applies the rule's ``.grad`` (sgd / adam / adamw)."""
    cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[name]
    return cls(params, lr=lr, weight_decay=weight_decay)


def schedule_factor(event: int, kind: str, warmup: int, horizon: int, min_factor: float, step_every: int,
                    gamma: float, hold: int = 0) -> float:
    """The learning-rate factor after ``event`` optimiser steps: 0 while e < hold; then with e' = e - hold,
    linear warm-up ``(e' + 1) / warmup`` while e' < warmup, then with t = e' - warmup,
    T = max(horizon - hold - warmup, 1): ``constant`` 1, ``cosine``
    ``min_factor + (1 - min_factor) (1 + cos(pi min(t, T) / T)) / 2``, ``step`` ``gamma ** (t // step_every)``."""
    if event < hold:
        return 0.0
    event, horizon = event - hold, horizon - hold
    if event < warmup:
        return (event + 1) / warmup
    t = event - warmup
    if kind == "cosine":
        span = max(horizon - warmup, 1)
        return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * min(t, span) / span))
    if kind == "step":
        return gamma ** (t // step_every)
    return 1.0


def make_scheduler(optimizer: torch.optim.Optimizer, spec: Any, horizon: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-event ``LambdaLR`` of :func:`schedule_factor` for the schedule table ``spec`` (``[rule.schedule]``);
    ``horizon`` is used where ``spec.horizon`` is 0."""
    args = (spec.kind, spec.warmup, spec.horizon or horizon, spec.min_factor, spec.step_every, spec.gamma, spec.hold)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, functools.partial(_factor, args=args))


def _factor(event: int, args: tuple) -> float:
    return schedule_factor(event, *args)


class LayerAgent:
    """One layer with its rule and optimiser. :meth:`step` is the whole per-event computation:
    forward (a = W x, y = rho(a)), the rule's update into ``.grad``, the optimiser step, and the
    transmitted output. Update sizes are accumulated on the device and read only at :meth:`check`.
    ``sync`` (distributed runs, :class:`saccade_sim.distributed.WeightSync`) averages the changes over
    ranks before the optimiser step and the weights after it."""

    def __init__(self, name: str, layer: Layer, rule: Rule, optimizer: torch.optim.Optimizer,
                 sync: WeightSync | None = None, scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
                 update_every: int = 1, dendrites: list[DendriticEdge] | None = None) -> None:
        self.name = name
        self.dendrites = list(dendrites or [])  #: the edges to this layer's dendrite (their weights learn with it)
        #: source -> its latest output delivered by a dendritic edge (:mod:`saccade_sim.wiring`)
        self.dendritic_inputs: dict[str, torch.Tensor] = {}
        rule.edges = {e.source: e for e in self.dendrites}
        self.sync = sync
        self.layer = layer
        self.rule = rule
        self.optimizer = optimizer
        self.scheduler = scheduler  #: stepped after every optimiser step (learning-rate schedule over steps)
        self.update_every = update_every  #: events whose changes are summed into one optimiser step
        self._summed: dict[int, torch.Tensor] = {}  #: id(param) -> the changes summed since the last step
        self._pending = 0  #: events since the last optimiser step
        self.learning = True
        self._update_sq = torch.zeros((), device=layer.weight.device)
        self._loss = torch.zeros((), device=layer.weight.device)
        self._count = 0
        self.last_loss: torch.Tensor | None = None  #: the local loss of the last event (None: the rule has none)
        self._event = self.event  #: :meth:`event`, or its compiled form (:meth:`compile`)

    def parameters(self) -> list[torch.nn.Parameter]:
        return (list(self.layer.parameters()) + list(self.rule.parameters())
                + [p for e in self.dendrites for p in e.parameters()])

    def dendrite(self) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
        """The dendritic input v = sum over edges of W_e z_e and each edge's z_e (by source); (None, {}) until
        an edge has delivered."""
        pre = {e.source: e.psp(self.dendritic_inputs[e.source]) for e in self.dendrites
               if e.source in self.dendritic_inputs}
        terms = [e(pre[e.source]) for e in self.dendrites if e.source in pre]
        return (sum(terms[1:], terms[0]) if terms else None), pre

    def step(self, g: Glimpse) -> Glimpse:
        # the rule sees the input as the weights do: normalised, padded, in the layer's memory format
        x = self.layer.prepare(self.layer.as_input(g.data.detach()), self.learning)
        out = self._event(x, g)
        if self.learning:
            self._count += 1
            if self.update_every > 1:  # eager: the sum and the step every update_every events
                self._pending += 1
                self._sum_changes()
                if self._pending == self.update_every:
                    self._optimizer_step()
        return g.with_data(self.layer.with_shortcut(out, g.data))

    def join(self, inputs: list[Glimpse]) -> Glimpse:
        """One event's glimpse from its several feedforward inputs (same event): their data concatenated along the
        channels (:func:`agents.layers.join`), the rest (index, gaze, modulator, ...) the first input's."""
        return inputs[0].with_data(join([g.data for g in inputs]))

    def eye_loss(self) -> torch.Tensor | None:
        """[B]: the rule's local loss of the last event per eye (None where the rule has none)."""
        return self.rule.eye_loss()

    def compile(self, mode: str) -> None:
        """Run the per-event tensor work (:meth:`event`: forward, rule update, adaptation, update statistics,
        optimiser step) through ``torch.compile``: ``mode`` one of its modes ("default", "reduce-overhead":
        CUDA graphs on a GPU, "max-autotune"), or "aot_eager" (captured graphs run eagerly, no code generation)."""
        if mode == "aot_eager":
            self._event = torch.compile(self.event, backend="aot_eager")
        else:
            self._event = torch.compile(self.event, mode=mode)

    def event(self, x: torch.Tensor, g: Glimpse) -> torch.Tensor:
        """One event's tensor work for input ``x`` of glimpse ``g`` (the optimiser step too when
        ``update_every`` is 1); returns what the layer transmits."""
        with torch.set_grad_enabled(self.learning and self.rule.needs_graph):
            a, y = self.layer.respond(x, self.learning)
        pooled = self.layer.pool(y.detach())
        if self.learning:
            dendrite, dendritic_pre = self.dendrite() if self.dendrites else (None, None)
            loss = self.rule.update(Factors(x, a, y, g.modulator, g, dendrite, dendritic_pre))
            self.layer.adapt(pooled)  # before the sync, which averages the running means with the changes
            self.last_loss = loss
            with torch.no_grad():
                norm = torch.linalg.vector_norm(self.layer.weight.grad)
                self._update_sq.addcmul_(norm, norm)
                if loss is not None:
                    self._loss += loss
            if self.update_every == 1:
                self._optimizer_step()
        return self.layer.centered(pooled)

    @torch.no_grad()
    def _sum_changes(self) -> None:
        """Add this event's ``.grad`` to the sum since the last step; at the step, the sum becomes ``.grad``."""
        last = self._pending == self.update_every
        for p in self.parameters():
            if p.grad is None:
                continue
            total = self._summed.get(id(p))
            if total is None:
                total = self._summed[id(p)] = torch.zeros_like(p.grad)
            total.add_(p.grad)
            if last:
                p.grad.copy_(total)
                total.zero_()

    def _optimizer_step(self) -> None:
        self._pending = 0
        if self.sync is not None:
            self.sync.before_step()
        with torch.no_grad():
            self.optimizer.step()
            if self.scheduler is not None:
                self.scheduler.step()
            self.rule.after_step()
        if self.sync is not None:
            self.sync.after_step()

    def diverged(self, max_weight_norm: float) -> str | None:
        """Why this layer is unusable (a non-finite layer or rule parameter, or a weight norm above
        ``max_weight_norm``), or None. One host sync; changes no state."""
        norms = torch.stack([p.detach().norm() for p in self.parameters()]).cpu()
        if not torch.isfinite(norms).all():
            return "non-finite weights"
        norm = float(self.layer.weight.detach().norm())
        if norm > max_weight_norm:
            return f"weight norm {norm:.3g} > run.max_weight_norm {max_weight_norm:g}"
        return None

    def divergence_error(self, why: str, time_ms: float) -> DivergenceError:
        return DivergenceError(f"layer {self.name} diverged at t = {time_ms:.0f} ms ({why}); "
                               "lower rule.lr or enable normalisation/competition")

    def check(self, time_ms: float, max_weight_norm: float) -> dict[str, float]:
        """Read the accumulated statistics (one host sync for the three) and stop on divergence.

        Returns ``update`` = sqrt(mean over events of |grad|^2) / |W| (W now; two fused ops per event instead of
        a norm of W at every event), ``loss`` = mean local loss (if any) and ``weight_norm`` = |W|.
        """
        n = max(self._count, 1)
        update_sq, loss, norm = torch.stack([self._update_sq / n, self._loss / n, self.layer.weight.detach().norm()]).tolist()
        stats = {"update": update_sq ** 0.5 / max(norm, 1e-12), "loss": loss, "weight_norm": norm}
        self._update_sq.zero_()
        self._loss.zero_()
        self._count = 0
        bad = [k for k, v in stats.items() if v != v or v in (float("inf"), float("-inf"))]
        if bad or norm > max_weight_norm:
            what = f"non-finite {bad[0]}" if bad else f"weight norm {norm:.3g} > run.max_weight_norm {max_weight_norm:g}"
            raise self.divergence_error(what, time_ms)
        return stats

    def state_dict(self) -> dict:
        """Weights, rule state (parameters and buffers), optimiser state and the statistics accumulated
        since the last :meth:`check` (so a resumed run logs the same history)."""
        return {"layer": self.layer.state_dict(), "rule": self.rule.state_dict(),
                "optimizer": self.optimizer.state_dict(), "learning": self.learning,
                "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
                "update_sq": self._update_sq.clone(), "loss": self._loss.clone(), "count": self._count,
                "pending": self._pending, "summed": [self._summed[id(p)].clone() if id(p) in self._summed else None
                                                     for p in self.parameters()],
                "dendrites": [e.state_dict() for e in self.dendrites],
                "dendritic_inputs": {k: v.clone() for k, v in self.dendritic_inputs.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.layer.load_state_dict(state["layer"])
        self.rule.load_state_dict(state["rule"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.learning = state["learning"]
        self._update_sq.copy_(state["update_sq"])
        self._loss.copy_(state["loss"])
        self._count = state["count"]
        self._pending = state["pending"]
        self._summed = {id(p): t.clone() for p, t in zip(self.parameters(), state["summed"]) if t is not None}
        for edge, saved in zip(self.dendrites, state.get("dendrites", [])):
            edge.load_state_dict(saved)
        device = self.layer.weight.device
        self.dendritic_inputs = {k: v.to(device, copy=True) for k, v in state.get("dendritic_inputs", {}).items()}
