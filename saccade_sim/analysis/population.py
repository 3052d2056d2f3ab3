"""Population statistics of a response matrix R [N stimuli, U units]: sparseness and dimensionality."""
from __future__ import annotations

import numpy as np


def treves_rolls(r: np.ndarray, axis: int) -> np.ndarray:
    """Treves-Rolls activity ratio a = (mean r)^2 / mean(r^2) along ``axis`` (r >= 0; 1/n for a one-hot,
    1 for a constant vector); an all-zero vector gives a = 1 (nothing is selective)."""
    r = np.asarray(r, dtype=np.float64)
    m1, m2 = r.mean(axis), (r * r).mean(axis)
    return np.divide(m1 * m1, m2, out=np.ones_like(m2), where=m2 > 0)


def sparseness(r: np.ndarray, axis: int) -> np.ndarray:
    """Vinje-Gallant sparseness S = (1 - a) / (1 - 1/n), a = Treves-Rolls ratio over the n entries of
    ``axis``: 0 for a dense (constant) code, 1 for a one-hot code. Negative responses are clipped to 0."""
    r = np.clip(np.asarray(r, dtype=np.float64), 0, None)
    n = r.shape[axis]
    return (1 - treves_rolls(r, axis)) / (1 - 1 / n)


def lifetime_sparseness(r: np.ndarray) -> np.ndarray:
    """Per unit, over stimuli: S of column j of R [N, U] -> [U]."""
    return sparseness(r, axis=0)


def population_sparseness(r: np.ndarray) -> np.ndarray:
    """Per stimulus, over units: S of row i of R [N, U] -> [N]."""
    return sparseness(r, axis=1)


def participation_ratio(x: np.ndarray) -> float:
    """Effective dimensionality PR = (sum_k l_k)^2 / sum_k l_k^2, l = eigenvalues of the covariance of
    x [N, F]: F for isotropic data, 1 for data on a line."""
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean(0)
    s = np.linalg.svd(x, compute_uv=False) ** 2  # eigenvalues of x^T x, up to 1/(N-1)
    return float(s.sum() ** 2 / (s * s).sum()) if s.any() else 0.0
