"""ZCA whitening of an image store: as one convolution fitted on training patches (``zca``), or with one
matrix over whole images as Miconi's notebook computes it (``zca_image``).

Patch fit: sample ``n`` patches of ``size x size`` (all channels) from the training images, centre them, and
take the ZCA matrix Z = U diag(1 / sqrt(lambda + eps)) U^T of their covariance (eigenvalues lambda,
``eps`` relative to the mean eigenvalue). The row of Z that belongs to the patch's centre pixel (one per
channel) is a [C, C, size, size] filter: convolving an image with it whitens every patch around every
pixel the way Z whitens the centre of a patch. Glimpses cut from the whitened store are then whitened.

Whole-image fit (HebbGrad_Github.ipynb, ``ZCA = 'IMAGE'``): each image flattened to a vector of D = C H W
entries and standardised over them, t = (v - mean v) / (1e-10 + std v); on n training images T [n, D],
``cov = T^T T / D + eps I`` (divided by D, the number of entries, as the notebook does; eps absolute, 1e-3
there), ``Z = U diag(lambda^-1/2) U^T``; every image becomes ``Z t``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

#: training patches the ZCA filter is fitted on
N_PATCHES = 20000
#: training images the whole-image ZCA matrix is fitted on (the notebook: one batch of 9000)
N_IMAGES = 9000
#: the largest image (C H W entries) whose D x D whole-image ZCA matrix is built (64 x 64 x 3: 1.2 GB in float64)
MAX_IMAGE_ENTRIES = 12288


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


def standardize_images(store: torch.Tensor) -> torch.Tensor:
    """Each image flattened [N, D] and standardised over its entries: (v - mean) / (1e-10 + std), unbiased std."""
    t = store.flatten(1)
    t = t - t.mean(1, keepdim=True)
    return t / (1e-10 + t.std(1, keepdim=True))


def fit_image_zca(store: torch.Tensor, eps: float, n: int, generator: torch.Generator) -> torch.Tensor:
    """The whole-image ZCA matrix Z [D, D] (float64) of ``n`` images of ``store`` [N, ...] drawn without
    replacement (all of them if N <= n): module docstring."""
    idx = torch.randperm(len(store), generator=generator)[:n]
    t = standardize_images(store[idx].double())
    cov = t.t() @ t / t.shape[1] + eps * torch.eye(t.shape[1], dtype=t.dtype)
    ev, u = torch.linalg.eigh(cov)
    return u @ torch.diag(ev.rsqrt()) @ u.t()


def whiten_images(store: torch.Tensor, zca: torch.Tensor) -> torch.Tensor:
    """Every image of ``store`` [N, ...] standardised over its entries and multiplied by ``zca`` (same shape)."""
    t = standardize_images(store.double())
    return (t @ zca.t()).view(store.shape).to(store.dtype)
