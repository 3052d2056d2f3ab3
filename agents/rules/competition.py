"""Competition between the units of a layer: what the post-synaptic factor is after lateral inhibition.

Pure functions over ``a`` [B, C, ...] (channels on dim 1, competition at every position).
"""
from __future__ import annotations

import torch


def kwta(a: torch.Tensor, y: torch.Tensor, k: int, threshold: torch.Tensor | None = None) -> torch.Tensor:
    """Hard k-winners-take-all: at each position keep y_j for the k largest ``a_j - theta_j``, else 0."""
    score = a if threshold is None else a - threshold.view(1, -1, *([1] * (a.dim() - 2)))
    k = min(k, a.shape[1])
    kth = score.topk(k, dim=1).values[:, -1:]
    return torch.where(score >= kth, y, torch.zeros_like(y))


def soft_wta(a: torch.Tensor, temperature: float, anti_hebbian: bool) -> torch.Tensor:
    """SoftHebb competition: y = softmax_j(a_j / T). With ``anti_hebbian`` the winner keeps +y and every
    other unit gets -y (SoftHebb's anti-Hebbian plasticity for non-winners)."""
    y = torch.softmax(a / temperature, dim=1)
    if not anti_hebbian:
        return y
    winner = a.argmax(dim=1, keepdim=True)
    sign = torch.full_like(y, -1.0).scatter_(1, winner, 1.0)
    return y * sign


def update_thresholds(threshold: torch.Tensor, winners: torch.Tensor, k: int, rate: float) -> torch.Tensor:
    """Homeostasis: theta_j += rate * (win rate_j - k / C); frequent winners become harder to excite."""
    c = winners.shape[1]
    dims = [0] + list(range(2, winners.dim()))
    rate_j = (winners != 0).to(threshold.dtype).mean(dim=dims)
    return threshold + rate * (rate_j - k / c)
