"""ZCA whitening of an image store, as one convolution fitted on training patches.

Fit: sample ``n`` patches of ``size x size`` (all channels) from the training images, centre them, and
take the ZCA matrix Z = U diag(1 / sqrt(lambda + eps)) U^T of their covariance (eigenvalues lambda,
``eps`` relative to the mean eigenvalue). The row of Z that belongs to the patch's centre pixel (one per
channel) is a [C, C, size, size] filter: convolving an image with it whitens every patch around every
pixel the way Z whitens the centre of a patch. Glimpses cut from the whitened store are then whitened.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

#: training patches the ZCA filter is fitted on
N_PATCHES = 20000


def fit_zca_kernel(store: torch.Tensor, size: int, eps: float, n: int, generator: torch.Generator) -> torch.Tensor:
    """The ZCA filter [C, C, size, size] of ``store`` [N, C, H, W] (module docstring)."""
    n_img, c, h, w = store.shape
    img = torch.randint(n_img, (n,), generator=generator)
    ys = torch.randint(h - size + 1, (n,), generator=generator)
    xs = torch.randint(w - size + 1, (n,), generator=generator)
    off = torch.arange(size)
    rows = (ys[:, None] + off)[:, :, None]
    cols = (xs[:, None] + off)[:, None, :]
    patches = store[img[:, None, None], :, rows, cols].permute(0, 3, 1, 2).reshape(n, -1).double()
    patches = patches - patches.mean(0)
    cov = patches.t() @ patches / (n - 1)
    ev, u = torch.linalg.eigh(cov)
    zca = u @ torch.diag((ev.clamp_min(0) + eps * ev.mean()).rsqrt()) @ u.t()
    centre = (size // 2) * size + size // 2
    rows_of_centre = zca.view(c, size * size, c * size * size)[:, centre]
    return rows_of_centre.view(c, c, size, size).to(store.dtype)


def whiten(store: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Convolve ``store`` [N, C, H, W] with the ZCA ``kernel`` (same size, reflect-padded borders)."""
    p = kernel.shape[-1] // 2
    return F.conv2d(F.pad(store, (p, p, p, p), mode="reflect"), kernel)
