"""Representational similarity analysis (Kriegeskorte et al. 2008): a similarity matrix per representation
and the rank correlation between two matrices' off-diagonal entries."""
from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr


def similarity_matrix(features: np.ndarray) -> np.ndarray:
    """RSM_ij = Pearson correlation between stimulus i's and stimulus j's feature vectors ([N, F] -> [N, N]);
    a constant feature vector is given zero similarity to everything else."""
    x = np.asarray(features, dtype=np.float64)
    x = x - x.mean(1, keepdims=True)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    x = np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)
    return x @ x.T


def label_similarity(labels: np.ndarray) -> np.ndarray:
    """The model RSM of the labels: 1 where two stimuli share a label, else 0."""
    labels = np.asarray(labels)
    return (labels[:, None] == labels[None, :]).astype(np.float64)


def rsa(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation between the upper off-diagonal triangles of two RSMs [N, N]."""
    iu = np.triu_indices(len(a), k=1)
    rho = spearmanr(a[iu], b[iu]).statistic
    return float(rho) if np.isfinite(rho) else 0.0


def rsa_table(rsms: dict[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
    """Pairwise RSA between every pair of named RSMs: (names, [R, R] matrix)."""
    names = list(rsms)
    out = np.eye(len(names))
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            out[i, j] = out[j, i] = rsa(rsms[names[i]], rsms[names[j]])
    return names, out
