"""SPHeRe: structural projection Hebbian representation (2025), a per-layer local loss.

With ``K(z)`` the cosine-similarity matrix of the rows of z (flattened), phi a small projection head and
lambda the orthogonality weight (``lam``), each layer minimises

    L = MSE(K(x), K(phi(y))) + lambda * MSE(K(phi(y)^T), I)

The first term keeps the similarity structure of the input batch in the projected output; the second
keeps the projected features (columns of phi(y)) orthogonal. The input x is detached and the gradient is
taken w.r.t. this layer's and its head's parameters only: nothing crosses layers.
phi: 1x1 conv to C/2, batch norm, ReLU, global average pool, linear to ``out_dim`` (dense layers: linear
to C/2, batch norm, ReLU, linear). ``pooled_head``: phi reads the layer's pooled output (the released
HebbLayer puts the max pool inside the block, so its head sees the pooled map), else y before pooling.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from saccade_sim.errors import ConfigError
from saccade_sim.registry import RULES

from .base import Factors, Rule, Step, loss_changes

if TYPE_CHECKING:  # annotations only: a rule is given its layer, it does not build one
    from ..layers import Layer


def cosine_matrix(z: torch.Tensor) -> torch.Tensor:
    """K(z)_ab = <z_a, z_b> / (|z_a| |z_b|) over the rows of z flattened to [N, F]."""
    z = F.normalize(z.flatten(1), dim=1, eps=1e-8)
    return z @ z.t()


def sphere_loss(x: torch.Tensor, p: torch.Tensor, lam: float) -> torch.Tensor:
    """MSE(K(x), K(p)) + lam * MSE(K(p^T), I) for input x [B, ...] and projection p [B, D]."""
    structure = F.mse_loss(cosine_matrix(p), cosine_matrix(x))
    eye = torch.eye(p.shape[1], dtype=p.dtype, device=p.device)
    return structure + lam * F.mse_loss(cosine_matrix(p.t()), eye)


def projection_head(layer: Layer, out_dim: int) -> nn.Sequential:
    """phi: 1x1 conv to C/2 + BN + ReLU + global average pool + linear (dense: linear + BN + ReLU + linear)."""
    c = layer.spec.channels
    h = max(c // 2, 1)
    if layer.is_conv:
        return nn.Sequential(nn.Conv2d(c, h, 1), nn.BatchNorm2d(h), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                             nn.Flatten(), nn.Linear(h, out_dim))
    return nn.Sequential(nn.Linear(c, h), nn.BatchNorm1d(h), nn.ReLU(), nn.Linear(h, out_dim))


@dataclass
class SphereOptions:
    lam: float = 0.8  #: weight of the orthogonality term
    out_dim: int = 256  #: width of the projection head's output
    pooled_head: bool = False  #: the head reads pool(y) (the released block) instead of y

    def validate(self, path: str) -> None:
        if self.lam < 0:
            raise ConfigError(f"{path}.lam: must be >= 0, got {self.lam}")
        if self.out_dim < 1:
            raise ConfigError(f"{path}.out_dim: must be >= 1, got {self.out_dim}")


@RULES.register("sphere")
class Sphere(Rule):
    """SPHeRe: per-layer MSE(K(x), K(phi(y))) + lambda MSE(K(phi(y)^T), I) through a small projection head."""

    Options = SphereOptions
    needs_graph = True

    def __init__(self, layer: Layer, options: SphereOptions, index: int, n_layers: int) -> None:
        super().__init__(layer, options, index, n_layers)
        self.head = projection_head(layer, options.out_dim).to(layer.weight.dtype)

    def step(self, weights, state, f: Factors) -> Step:
        """dW = -dL/dW of :func:`sphere_loss` for the layer's and the head's parameters."""
        y = self.layer.pool(f.post) if self.options.pooled_head else f.post
        loss = sphere_loss(f.pre.detach(), self.head(y), self.options.lam)
        return Step(loss_changes(loss, weights), {}, loss.detach())
