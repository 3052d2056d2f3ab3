"""Dendritic edges: the weights through which another area's output (or the area's own past output) reaches an
area's dendrite. ``v = W z`` with ``z`` the source's output averaged over its positions ([B, C_s]; a dense
source's as it is) and ``W`` [C, C_s]; for a conv target ``v`` is [B, C, 1, 1] (the same at every position)."""
from __future__ import annotations

import math

import torch
from torch import nn


class DendriticEdge(nn.Module):
    """The weights of one edge ``source`` -> this area's dendrite, initialised N(0, init_norm^2 / C_s)."""

    def __init__(self, source: str, n_in: int, n_out: int, init_norm: float, conv_target: bool) -> None:
        super().__init__()
        self.source = source
        self.conv_target = conv_target
        self.weight = nn.Parameter(torch.randn(n_out, n_in) * (init_norm / math.sqrt(n_in)))

    @staticmethod
    def psp(r: torch.Tensor) -> torch.Tensor:
        """z [B, C_s]: the source's output [B, C_s, ...] averaged over its positions."""
        return r.flatten(2).mean(2) if r.dim() > 2 else r.flatten(1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """v = W z, [B, C] (or [B, C, 1, 1] for a conv target)."""
        v = z @ self.weight.t()
        return v[..., None, None] if self.conv_target else v
