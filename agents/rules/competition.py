"""Competition between the units of a layer: what the post-synaptic factor is after lateral inhibition.

Pure functions over ``a`` [B, C, ...] (channels on dim 1, competition at every position).
"""
from __future__ import annotations

import torch


def winners(a: torch.Tensor, k: int, threshold: torch.Tensor | None = None) -> torch.Tensor:
    """Boolean mask [B, C, ...] of the k largest ``a_j - theta_j`` over channels at each position."""
    score = a if threshold is None else a - threshold.view(1, -1, *([1] * (a.dim() - 2)))
    idx = score.topk(min(k, a.shape[1]), dim=1).indices
    return torch.zeros_like(a, dtype=torch.bool).scatter_(1, idx, True)


def kwta(a: torch.Tensor, y: torch.Tensor, k: int, threshold: torch.Tensor | None = None) -> torch.Tensor:
    """Hard k-winners-take-all: y_j where unit j is one of the k :func:`winners` at its position, else 0."""
    return torch.where(winners(a, k, threshold), y, torch.zeros_like(y))


def soft_wta(a: torch.Tensor, temperature: float, anti_hebbian: bool) -> torch.Tensor:
    """SoftHebb competition: y = softmax_j(a_j / T). With ``anti_hebbian`` the winner keeps +y and every
    other unit gets -y (SoftHebb's anti-Hebbian plasticity for non-winners)."""
    y = torch.softmax(a / temperature, dim=1)
    if not anti_hebbian:
        return y
    winner = a.argmax(dim=1, keepdim=True)
    sign = torch.full_like(y, -1.0).scatter_(1, winner, 1.0)
    return y * sign


def update_thresholds(threshold: torch.Tensor, won: torch.Tensor, k: int, rate: float) -> torch.Tensor:
    """Homeostasis: theta_j += rate * (p_j - k / C), p_j = the fraction of (sample, position) pairs that
    unit j won (``won`` [B, C, ...], nonzero = won); frequent winners become harder to excite."""
    c = won.shape[1]
    dims = [0] + list(range(2, won.dim()))
    p = (won != 0).to(threshold.dtype).mean(dim=dims)
    return threshold + rate * (p - k / c)
