"""Urbanczik & Senn's dendritic prediction of somatic activity, with the dendrite driven by top-down edges.

R. Urbanczik, W. Senn (2014), *Learning by the dendritic prediction of somatic spiking*, Neuron 81(3):521-528.
A two-compartment neuron: the dendritic potential V_w = sum_i w_i PSP_i is attenuated on its way to the soma,
whose potential without somatic input would be V*_w = g_D / (g_D + g_L) V_w; the dendritic synapses learn to
predict the soma's rate, dw_i = eta (phi(U) - phi(V*_w)) PSP_i (the paper's rate form; its spike form replaces
phi(U) by the spike train and weights the error by h(V*_w), dropped here).

Here the soma of area L is driven by its feedforward input, U = a = W x (the layer's potential), and its dendrite
by the edges to it (``[[network.edges]]``, e.g. ``source = "layer2"``, ``kind = "topdown"``): V_w = sum_e W_e z_e,
z_e the source's output averaged over its positions (the PSP). The top-down weights W_e learn to predict the
area's activity from the area above; the feedforward weights W do not change under this rule (dW = 0). For a conv
area the error is averaged over its positions: for each edge,

    dW_e = 1/B sum_b e_b z_b^T,   e_b = mean_pos (phi(u_b) - phi(g_D / (g_D + g_L) v_b)) [C]

and the local loss is 0.5 mean_{b,c,pos} (phi(u) - phi(v*))^2.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from saccade_sim.errors import ConfigError
from saccade_sim.registry import RULES

from .base import WEIGHT, Factors, Rule, Step


@dataclass
class UrbanczikSennOptions:
    g_l: float = 0.1  #: leak conductance (the paper: 0.1 / ms)
    g_d: float = 2.0  #: dendro-somatic coupling (the paper: 2 / ms)
    phi_max: float = 1.0  #: the rate function phi(u) = phi_max / (1 + k exp(beta (theta - u)))
    k: float = 1.0
    beta: float = 1.0
    theta: float = 0.0

    def validate(self, path: str) -> None:
        for key in ("g_l", "g_d", "phi_max", "k", "beta"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"{path}.{key}: must be > 0, got {getattr(self, key)!r}")


def rate(u: torch.Tensor, o: UrbanczikSennOptions) -> torch.Tensor:
    """phi(u) = phi_max / (1 + k exp(beta (theta - u)))."""
    return o.phi_max * torch.sigmoid(o.beta * (u - o.theta) - math.log(o.k))


def dendritic_error(u: torch.Tensor, v: torch.Tensor, o: UrbanczikSennOptions) -> torch.Tensor:
    """phi(u) - phi(v*), v* = g_D / (g_D + g_L) v: the soma's rate minus the dendrite's prediction of it."""
    return rate(u, o) - rate(o.g_d / (o.g_d + o.g_l) * v, o)


@RULES.register("urbanczik_senn")
class UrbanczikSenn(Rule):
    """Urbanczik & Senn (2014): top-down dendritic synapses learn to predict the soma, dW_e = (phi(U) - phi(V*)) z_e."""

    Options = UrbanczikSennOptions

    def step(self, weights, state, f: Factors) -> Step:
        """dW_e = 1/B sum_b e_b z_b^T per dendritic edge e (module docstring); dW = 0; no change before a dendrite
        has input."""
        with torch.no_grad():
            updates = {WEIGHT: torch.zeros_like(weights[WEIGHT])}
            if f.dendrite is None:
                return Step(updates, {}, None)
            err = dendritic_error(f.a.detach(), f.dendrite, self.options)  # [B, C, ...]
            e = err.flatten(2).mean(2) if err.dim() > 2 else err  # [B, C]
            for source, z in f.dendritic_pre.items():
                updates[f"edge.{source}.weight"] = e.t() @ z / len(z)
            return Step(updates, {}, 0.5 * err.square().mean(), diagnostics={"error": err})

    def eye_loss(self) -> torch.Tensor | None:
        """[B]: 0.5 sum_{c,pos} (phi(u) - phi(v*))^2 / (B C P) per eye (summed over the eyes: the loss)."""
        err = self.diagnostics.get("error")
        if err is None:
            return None
        return 0.5 * err.flatten(1).square().sum(1) / err.numel()
