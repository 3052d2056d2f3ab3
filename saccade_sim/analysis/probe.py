"""Linear probes: how much of the label a layer's representation of a stimulus makes linearly available.

A stimulus is represented by every glimpse of its gaze grid: each glimpse's layer output is average-pooled
to ``pool x pool`` and the grid is concatenated (or averaged). The raw-input baseline uses the raw glimpse
pixels, unpooled. A ridge classifier (one-hot targets) is fitted on the probe's training split, its
penalty chosen by leave-one-out on that split, and scored on a test split it never saw; or
(``classifier = "linear"``) the readout SoftHebb's demo.py trains: a linear softmax classifier with dropout
0.5 on its input, cross-entropy, Adam (lr 1e-3, batch 64), the lr halved at 20, 35, 50, 60, 70, 80 and 90%
of the epochs.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F

from ..parts import GlimpseSource, Transmitter

LAMBDAS = torch.logspace(-3, 3, 13, dtype=torch.float64)  #: penalties, relative to the mean Gram eigenvalue


@torch.no_grad()
def grid_features(layers: Sequence[Transmitter], modality: GlimpseSource, store: torch.Tensor, idx: torch.Tensor,
                  pool: int = 2, aggregate: str = "concat", batch: int = 64,
                  dtype: torch.dtype = torch.float64, with_input: bool = True,
                  tick: Callable[[], Any] = lambda: None) -> list[torch.Tensor]:
    """[input, layer 1, ...] features of stimuli ``idx`` (without the input unless ``with_input``; every layer run
    on the input it gathers from the network's graph, ``Layer.gather``), each [N, F] of
    ``dtype`` on the CPU (the layers compute in float32, so float32 features hold the same values in half the
    memory). Each chunk of ``batch`` stimuli is written into the preallocated outputs as soon as it is computed,
    then ``tick()`` is called."""
    g = modality.space.grid.shape[0]
    skip = 0 if with_input else 1
    out: list[torch.Tensor] = []
    for start in range(0, len(idx), batch):
        chunk = idx[start:start + batch]
        n = len(chunk)
        x = modality.grid_glimpses(store, chunk)
        reps = [x]
        for layer in layers:
            x = layer.gather(reps)
            reps.append(layer.transmit(layer(x)[1], x))
        for i, r in enumerate(reps[skip:], skip):
            if i > 0 and r.dim() == 4:
                r = F.adaptive_avg_pool2d(r, (min(pool, r.shape[-2]), min(pool, r.shape[-1])))
            r = r.reshape(n, g, -1)
            r = r.mean(1) if aggregate == "mean" else r.reshape(n, -1)
            if len(out) <= i - skip:
                out.append(torch.empty(len(idx), r.shape[1], dtype=dtype))
            out[i - skip][start:start + n] = r
        del reps, x
        tick()
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
                lambdas: torch.Tensor = LAMBDAS, solver: str = "kernel") -> dict[str, float]:
    """Test accuracy of a ridge classifier (one eigendecomposition: of the Gram matrix K = X X^T, or with
    ``solver = "auto"`` and fewer features than items, of X^T X: the same classifier, cheaper).

    Features are standardised with training statistics (:func:`standardized_grams` for K); targets are centred
    one-hot codes. The penalty (relative to the mean eigenvalue) is chosen by exact leave-one-out accuracy on
    the training split: with hat matrix H = K (K + l I)^-1, the left-out score of item i is
    y_i - (y_i - f_i) / (1 - H_ii).
    """
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    y1 = F.one_hot(y_train, n_classes).double()
    y_mean = y1.mean(0)
    yc = y1 - y_mean
    primal = solver == "auto" and x_train.shape[1] < x_train.shape[0]
    if primal:  # X^T X = U diag(ev) U^T; Z = X U holds K's eigenvectors scaled by sqrt(ev)
        x_train, x_test = x_train.double(), x_test.double()
        mean, std = x_train.mean(0), x_train.std(0).clamp_min(1e-8)
        x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
        ev, u = _eigh_one_thread(x_train.T @ x_train)
        ev = ev.clamp_min(0)
        z = x_train @ u
        zty = z.T @ yc
        scale = ev.sum() / len(x_train)
    else:
        gram, gram_test = standardized_grams(x_train, x_test)
        ev, v = _eigh_one_thread(gram)
        ev = ev.clamp_min(0)
        vty = v.T @ yc
        scale = ev.mean()
    loo = []
    for lam in lambdas:
        if primal:
            shrink = 1 / (ev + lam * scale)
            residual = yc - z @ (shrink[:, None] * zty)
            one_minus_h = 1 - (z * z) @ shrink
        else:
            # residual y - f and 1 - H_ii from the complement l / (ev + l) directly: no cancellation near
            # interpolation (many more features than items, where H_ii -> 1)
            complement = lam * scale / (ev + lam * scale)
            residual = v @ (complement[:, None] * vty)
            one_minus_h = (v * v) @ complement
        left_out = yc - residual / one_minus_h.clamp_min(1e-300)[:, None]
        loo.append(((left_out + y_mean).argmax(1) == y_train).double().mean())
    loo_acc = torch.stack(loo)
    best = int(torch.nonzero(loo_acc == loo_acc.max()).max())  # ties: the stronger penalty
    if primal:
        scores = x_test @ (u @ (zty / (ev + lambdas[best] * scale)[:, None]))
    else:
        scores = gram_test @ (v @ (vty / (ev + lambdas[best] * scale)[:, None]))
    pred = (scores + y_mean).argmax(1)
    return {"accuracy": float((pred == y_test).double().mean()), "lambda": float(lambdas[best]),
            "loo_accuracy": float(loo_acc[best])}


def probe_table(results: dict[str, Any]) -> str:
    """The per-layer probe table of a ``results.json`` tree: trained accuracy next to the random-weights and
    raw-input baselines."""
    probe = results.get("probe") or {}
    if not probe:
        return "(probe disabled)"
    rows = [("representation", "trained", "random weights")]
    rows.append(("input (raw glimpses)", f"{probe['baselines']['input']:.3f}", ""))
    for name, acc in probe["layers"].items():
        rows.append((name, f"{acc:.3f}", f"{probe['baselines']['random'][name]:.3f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append(f"(test accuracy, {probe['n_test']} held-out stimuli; probe trained on {probe['n_train']}; "
                 f"chance {probe['chance']:.3f})")
    return "\n".join(lines)


#: fractions of the epochs after which the linear readout's learning rate is halved (demo.py's CustomStepLR)
HALVINGS = (0.2, 0.35, 0.5, 0.6, 0.7, 0.8, 0.9)


def linear_probe(x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor,
                 epochs: int = 50, seed: int = 0, batch: int = 64, lr: float = 1e-3, dropout: float = 0.5,
                 device: torch.device | str = "cpu") -> dict[str, float]:
    """Test accuracy of the released SoftHebb readout (module docstring) on features standardised with the
    training statistics, trained in float32 on ``device``; the initial weights, the epoch order and the
    dropout masks come from a generator (on ``device``) seeded with ``seed``."""
    g = torch.Generator(device=device).manual_seed(seed)
    mean, std = x_train.mean(0), x_train.std(0).clamp_min(1e-8)
    x_train = ((x_train - mean) / std).float().to(device)
    x_test = ((x_test - mean) / std).float().to(device)
    y_train = y_train.to(device)
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    head = torch.nn.Linear(x_train.shape[1], n_classes, device=device)
    with torch.no_grad():  # torch's default init, drawn from the seeded generator
        bound = 1 / x_train.shape[1] ** 0.5
        head.weight.uniform_(-bound, bound, generator=g)
        head.bias.uniform_(-bound, bound, generator=g)
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    halve_at = {int(epochs * r) for r in HALVINGS}
    for epoch in range(epochs):
        if epoch in halve_at:
            for group in opt.param_groups:
                group["lr"] *= 0.5
        for idx in torch.randperm(len(x_train), generator=g, device=device).split(batch):
            keep = (torch.rand(len(idx), x_train.shape[1], generator=g, device=device) >= dropout) / (1 - dropout)
            loss = F.cross_entropy(head(x_train[idx] * keep), y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        pred = head(x_test).argmax(1).cpu()
    return {"accuracy": float((pred == y_test).double().mean()), "loss": float(loss.detach())}
