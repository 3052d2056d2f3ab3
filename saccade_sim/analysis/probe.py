"""Linear probes: how much of the label a layer's representation of a stimulus makes linearly available.

A stimulus is represented by every glimpse of its gaze grid: each glimpse's layer output is average-pooled
to ``pool x pool`` and the grid is concatenated (or averaged). The raw-input baseline uses the raw glimpse
pixels, unpooled. A ridge classifier (one-hot targets) is fitted on the probe's training split, its
penalty chosen by leave-one-out on that split, and scored on a test split it never saw.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from agents.layers import Layer

from ..modalities.base import Modality

LAMBDAS = torch.logspace(-3, 3, 13, dtype=torch.float64)  #: penalties, relative to the mean Gram eigenvalue


@torch.no_grad()
def grid_features(layers: Sequence[Layer], modality: Modality, store: torch.Tensor, idx: torch.Tensor,
                  pool: int = 2, aggregate: str = "concat", batch: int = 64,
                  dtype: torch.dtype = torch.float64, with_input: bool = True) -> list[torch.Tensor]:
    """[input, layer 1, ...] features of stimuli ``idx`` (without the input unless ``with_input``), each [N, F] of
    ``dtype`` on the CPU (the layers compute in float32, so float32 features hold the same values in half the
    memory). Each chunk of ``batch`` stimuli is written into the preallocated outputs as soon as it is computed."""
    g = modality.space.grid.shape[0]
    skip = 0 if with_input else 1
    out: list[torch.Tensor] = []
    for start in range(0, len(idx), batch):
        chunk = idx[start:start + batch]
        n = len(chunk)
        x = modality.grid_glimpses(store, chunk)
        reps = [x]
        for layer in layers:
            x = layer.transmit(layer(x)[1])
            reps.append(x)
        for i, r in enumerate(reps[skip:], skip):
            if i > 0 and r.dim() == 4:
                r = F.adaptive_avg_pool2d(r, (min(pool, r.shape[-2]), min(pool, r.shape[-1])))
            r = r.reshape(n, g, -1)
            r = r.mean(1) if aggregate == "mean" else r.reshape(n, -1)
            if len(out) <= i - skip:
                out.append(torch.empty(len(idx), r.shape[1], dtype=dtype))
            out[i - skip][start:start + n] = r
        del reps, x
    return out


def _eigh_one_thread(k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """eigh on one thread: threaded LAPACK eigh stalls (150x measured) when another process holds a core."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return torch.linalg.eigh(k)
    finally:
        torch.set_num_threads(threads)


#: feature columns standardised (in float64) at a time when the Gram matrices are accumulated
GRAM_BLOCK = 2048


def standardized_grams(x_train: torch.Tensor, x_test: torch.Tensor, block: int = GRAM_BLOCK) -> tuple[torch.Tensor, torch.Tensor]:
    """K = Z Z^T [n, n] and K_test = Z_test Z^T [m, n] in float64, with Z = (x - mean) / std per feature (training
    statistics), summed over blocks of ``block`` feature columns: the features stay in their dtype and only one
    float64 block of each split exists at a time."""
    k = x_train.new_zeros(len(x_train), len(x_train), dtype=torch.float64)
    k_test = x_train.new_zeros(len(x_test), len(x_train), dtype=torch.float64)
    for start in range(0, x_train.shape[1], block):
        z = x_train[:, start:start + block].to(torch.float64, copy=True)
        z_test = x_test[:, start:start + block].to(torch.float64, copy=True)
        mean, std = z.mean(0), z.std(0).clamp_min(1e-8)
        z.sub_(mean).div_(std)
        z_test.sub_(mean).div_(std)
        k.addmm_(z, z.T)
        k_test.addmm_(z_test, z.T)
    return k, k_test


def ridge_probe(x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor,
                lambdas: torch.Tensor = LAMBDAS) -> dict[str, float]:
    """Test accuracy of a ridge classifier (kernel form, one eigendecomposition of the Gram matrix).

    Features are standardised with training statistics (:func:`standardized_grams`); targets are centred
    one-hot codes. The penalty (relative to the mean eigenvalue) is chosen by exact leave-one-out accuracy on
    the training split: with hat matrix H = K (K + l I)^-1, the left-out score of item i is
    y_i - (y_i - f_i) / (1 - H_ii).
    """
    gram, gram_test = standardized_grams(x_train, x_test)
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    y1 = F.one_hot(y_train, n_classes).double()
    y_mean = y1.mean(0)
    yc = y1 - y_mean
    ev, v = _eigh_one_thread(gram)
    ev = ev.clamp_min(0)
    vty = v.T @ yc
    scale = ev.mean()
    loo = []
    for lam in lambdas:
        # residual y - f and 1 - H_ii from the complement l / (ev + l) directly: no cancellation near
        # interpolation (many more features than items, where H_ii -> 1)
        complement = lam * scale / (ev + lam * scale)
        residual = v @ (complement[:, None] * vty)
        one_minus_h = (v * v) @ complement
        left_out = yc - residual / one_minus_h.clamp_min(1e-300)[:, None]
        loo.append(((left_out + y_mean).argmax(1) == y_train).double().mean())
    loo_acc = torch.stack(loo)
    best = int(torch.nonzero(loo_acc == loo_acc.max()).max())  # ties: the stronger penalty
    alpha = v @ (vty / (ev + lambdas[best] * scale)[:, None])
    pred = (gram_test @ alpha + y_mean).argmax(1)
    return {"accuracy": float((pred == y_test).double().mean()), "lambda": float(lambdas[best]),
            "loo_accuracy": float(loo_acc[best])}
