"""Receptive fields: first-layer weights as images, response-weighted averages for deeper layers, a Gabor
fit (scipy.optimize.curve_fit) and an orientation selectivity index from the grating tuning curve."""
from __future__ import annotations

import warnings

import numpy as np
import torch
from scipy.optimize import OptimizeWarning, curve_fit


def response_weighted_average(glimpses: torch.Tensor, responses: torch.Tensor) -> torch.Tensor:
    """RWA_j = sum_n r_nj x_n / sum_n r_nj with r = max(response, 0): the mean stimulus that drives unit j.

    ``glimpses`` [N, C, h, w], ``responses`` [N, U] -> [U, C, h, w] (units that never respond give 0)."""
    r = responses.double().clamp_min(0)
    x = glimpses.double().flatten(1)
    rwa = (r.T @ x) / r.sum(0).clamp_min(1e-12)[:, None]
    return rwa.view(responses.shape[1], *glimpses.shape[1:])


def gabor(coords: np.ndarray, amplitude: float, x0: float, y0: float, sigma_x: float, sigma_y: float,
          theta: float, frequency: float, phase: float, offset: float) -> np.ndarray:
    """g(x, y) = A exp(-(x'^2 / 2 sx^2 + y'^2 / 2 sy^2)) cos(2 pi f x' + phi) + c, where
    x' = (x - x0) cos(theta) + (y - y0) sin(theta), y' = -(x - x0) sin(theta) + (y - y0) cos(theta):
    theta is the direction of the carrier (the stripes run perpendicular to it). ``coords`` = (x, y) [2, P]."""
    x, y = coords
    xr = (x - x0) * np.cos(theta) + (y - y0) * np.sin(theta)
    yr = -(x - x0) * np.sin(theta) + (y - y0) * np.cos(theta)
    envelope = np.exp(-(xr ** 2 / (2 * sigma_x ** 2) + yr ** 2 / (2 * sigma_y ** 2)))
    return amplitude * envelope * np.cos(2 * np.pi * frequency * xr + phase) + offset


def _grid(h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    return np.stack([x.ravel(), y.ravel()])


GABOR_PARAMS = ("amplitude", "x0", "y0", "sigma_x", "sigma_y", "theta", "frequency", "phase", "offset")


def fit_gabor(patch: np.ndarray, starts: int = 4) -> dict[str, float]:
    """Least-squares Gabor fit of a 2-D ``patch`` (curve_fit, bounded trust-region), started from the
    patch's dominant spatial frequency and orientation at ``starts`` phases; returns the best fit's
    parameters and ``r2`` = 1 - SS_res / SS_tot (the fit quality; NaN for a constant patch). Patches with fewer than twice as many
    pixels as the 9 parameters (e.g. 3x3 kernels) are not fitted: every value is NaN."""
    patch = np.asarray(patch, dtype=np.float64)
    h, w = patch.shape
    if h * w < 2 * len(GABOR_PARAMS):
        return dict.fromkeys((*GABOR_PARAMS, "r2"), float("nan"))
    coords, z = _grid(h, w), patch.ravel()
    spectrum = np.abs(np.fft.fft2(patch - patch.mean()))
    fy, fx = np.fft.fftfreq(h), np.fft.fftfreq(w)
    iy, ix = np.unravel_index(np.argmax(spectrum), spectrum.shape)
    f0, theta0 = max(np.hypot(fx[ix], fy[iy]), 1.0 / max(h, w)), np.arctan2(fy[iy], fx[ix])
    energy = np.abs(patch - patch.mean())
    cy, cx = (np.indices(patch.shape) * energy).reshape(2, -1).sum(1) / max(energy.sum(), 1e-12)
    size = max(h, w)
    lower = [-np.inf, -0.5, -0.5, 0.3, 0.3, -2 * np.pi, 0.0, -4 * np.pi, -np.inf]
    upper = [np.inf, w - 0.5, h - 0.5, size, size, 2 * np.pi, 0.5, 4 * np.pi, np.inf]
    best, best_sse = None, np.inf
    for phase in np.linspace(0, 2 * np.pi, starts, endpoint=False):
        p0 = [np.abs(patch).max(), cx, cy, size / 4, size / 4, theta0, min(f0, 0.49), phase, patch.mean()]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", OptimizeWarning)  # the covariance is not used
                params, _ = curve_fit(gabor, coords, z, p0=p0, bounds=(lower, upper), maxfev=2000)
        except RuntimeError:  # no convergence from this start
            continue
        sse = float(((gabor(coords, *params) - z) ** 2).sum())
        if sse < best_sse:
            best, best_sse = params, sse
    sst = float(((z - z.mean()) ** 2).sum())
    names = GABOR_PARAMS
    out = dict(zip(names, map(float, best))) if best is not None else dict.fromkeys(names, float("nan"))
    out["r2"] = 1.0 - best_sse / sst if best is not None and sst > 0 else float("nan")
    return out


def orientation_tuning(filters: np.ndarray, n_orientations: int = 16,
                       frequencies: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Response of each linear filter [U, h, w] to sinusoidal gratings of zero mean over the patch: for
    orientation theta, with e(x) = exp(-2 pi i f (x cos theta + y sin theta)),
    r(theta) = max over f and phase phi of <w, cos(2 pi f (x cos theta + y sin theta) + phi) - its mean>
    = max_f |sum_x (w(x) - mean w) e(x)| (the phase maximised in closed form; removing the grating's mean is
    removing the filter's, so a filter's mean luminance response adds nothing at any orientation).
    Returns (r [U, n_orientations], theta [n_orientations] in [0, pi))."""
    filters = np.asarray(filters, dtype=np.float64)
    _, h, w = filters.shape
    if frequencies is None:
        frequencies = np.linspace(1.0 / max(h, w), 0.5, 8)
    theta = np.arange(n_orientations) * np.pi / n_orientations
    x, y = _grid(h, w)
    proj = np.cos(theta)[:, None] * x + np.sin(theta)[:, None] * y  # [O, P]
    waves = np.exp(-2j * np.pi * frequencies[:, None, None] * proj[None])  # [F, O, P]
    flat = filters.reshape(len(filters), -1)
    amp = np.abs(np.einsum("up,fop->ufo", flat - flat.mean(1, keepdims=True), waves))
    return amp.max(1), theta


def orientation_selectivity(tuning: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """OSI = |sum_theta r(theta) exp(2 i theta)| / sum_theta r(theta) (1 - circular variance): 0 for an
    untuned (isotropic) filter, 1 for a filter that responds to a single orientation, NaN for a flat filter."""
    r = np.asarray(tuning, dtype=np.float64)
    total = r.sum(-1)
    return np.abs((r * np.exp(2j * theta)).sum(-1)) / np.where(total > 0, total, np.nan)


def to_gray(fields: np.ndarray) -> np.ndarray:
    """[U, C, h, w] -> [U, h, w]: the sum over input channels (the luminance-like part of a colour field)."""
    return np.asarray(fields).sum(1)
