"""Eye-movement statistics of a run's scan-path trace (``scanpath.npz``, ``record.scanpath``): fixation
durations, saccade amplitudes, the main sequence, coverage and revisits, and their figure.

A *visit* is a run of consecutive fixations of one eye on one stimulus. Over the visits,

    coverage  = mean over visits of (distinct grid cells fixated) / (grid cells), each gaze taken at its
                nearest grid point,
    revisits  = (fixations on a cell already fixated earlier in the same visit) / (fixations after the first).

The main sequence is the least-squares line ``saccade_ms = intercept + slope * amplitude_deg`` over the
saccades (asynchronous eyes: lockstep eyes have no saccade durations)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .figures import plt, save


def visits(trace: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Row indices of the trace, one array per visit (time order within an eye)."""
    out = []
    for b in np.unique(trace["eye"]):
        rows = np.nonzero(trace["eye"] == b)[0]
        rows = rows[np.argsort(trace["end_ms"][rows], kind="stable")]
        breaks = np.nonzero(np.diff(trace["stimulus"][rows]) != 0)[0] + 1
        out += np.split(rows, breaks)
    return out


def nearest_cells(gaze: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """[n] the index of the grid point [G, D] nearest each gaze [n, D]."""
    return ((gaze[:, None, :] - grid[None].astype(np.float64)) ** 2).sum(-1).argmin(1)


def coverage_and_revisits(trace: dict[str, np.ndarray], grid: np.ndarray) -> tuple[float, float]:
    """(coverage, revisit rate) of the trace's visits over ``grid`` (module docstring)."""
    cells = nearest_cells(trace["gaze"], grid)
    covered, repeats, later = [], 0, 0
    for rows in visits(trace):
        c = cells[rows]
        covered.append(len(np.unique(c)) / len(grid))
        seen: set[int] = set()
        for k, cell in enumerate(c):
            if k:
                later += 1
                repeats += int(cell) in seen
            seen.add(int(cell))
    return float(np.mean(covered)), repeats / max(later, 1)


def eye_movement_stats(trace: dict[str, np.ndarray], grid: np.ndarray, motor: Any, mean_fixation_ms: float) -> dict:
    """The numbers of the analysis, beside the configured ones (``motor`` = ``[eye.motor]``)."""
    from scipy import stats

    fix = trace["fixation_ms"]
    moved = ~np.isnan(trace["amplitude_px"])
    amp_deg = trace["amplitude_px"][moved] / motor.pixels_per_degree
    out: dict[str, Any] = {"fixations": int(len(fix)), "fixation_ms_mean": float(fix.mean()),
                           "fixation_ms_median": float(np.median(fix)), "fixation_ms_sd": float(fix.std()),
                           "configured_fixation_ms_mean": mean_fixation_ms, "timing": motor.timing,
                           "saccade_amplitude_deg_mean": float(amp_deg.mean()) if len(amp_deg) else float("nan"),
                           "microsaccades": float(trace["micro"].mean())}
    if motor.timing == "gamma":
        shape, scale = motor.fixation_shape, mean_fixation_ms / motor.fixation_shape
        out["fixation_ks_p"] = float(stats.kstest(fix, "gamma", args=(shape, 0, scale)).pvalue)
        out["configured_fixation_shape"] = shape
        sac = trace["saccade_ms"][moved]
        if len(sac) > 1 and np.ptp(amp_deg) > 0:
            slope, intercept = np.polyfit(amp_deg, sac, 1)
            out.update(main_sequence_intercept_ms=float(intercept), main_sequence_slope_ms_per_deg=float(slope))
        out.update(configured_intercept_ms=motor.saccade_intercept_ms, configured_slope_ms_per_deg=motor.saccade_slope_ms)
    out["coverage"], out["revisit_rate"] = coverage_and_revisits(trace, grid)
    return out


def longest_trace_visit(trace: dict[str, np.ndarray]) -> tuple[int, np.ndarray, int, int]:
    """The longest visit in the trace: (stimulus, gazes [n, D], eye, its first row)."""
    rows = max(visits(trace), key=len)
    return int(trace["stimulus"][rows[0]]), trace["gaze"][rows].astype(np.int64), int(trace["eye"][rows[0]]), int(rows[0])


def eye_movement_figure(out: Path, trace: dict[str, np.ndarray], summary: dict, motor: Any, grid: np.ndarray) -> str:
    """Four panels: fixation durations (with the configured gamma density), saccade amplitudes, the main
    sequence (fit and configured line), and the coverage of a visit over its fixations. ``eye_movements.png``."""
    from scipy import stats

    fig, ax = plt.subplots(2, 2, figsize=(10, 8))
    fix = trace["fixation_ms"]
    ax[0, 0].hist(fix, bins=50, density=True, color="C0", alpha=0.7, label=f"recorded (n = {len(fix)})")
    if motor.timing == "gamma":
        t = np.linspace(0, fix.max(), 200)
        k = motor.fixation_shape
        ax[0, 0].plot(t, stats.gamma.pdf(t, k, 0, summary["configured_fixation_ms_mean"] / k), "k",
                      label=f"configured gamma (k = {k:g}, mean {summary['configured_fixation_ms_mean']:g} ms)")
        ax[0, 0].set_title(f"fixation durations: mean {summary['fixation_ms_mean']:.0f} ms, KS p = "
                           f"{summary['fixation_ks_p']:.2f}", fontsize=9)
    else:
        ax[0, 0].set_title(f"fixation durations: lockstep, {summary['fixation_ms_mean']:.0f} ms", fontsize=9)
    ax[0, 0].set(xlabel="fixation duration (ms)", ylabel="density")
    ax[0, 0].legend(fontsize=7)
    moved = ~np.isnan(trace["amplitude_px"])
    amp = trace["amplitude_px"][moved] / motor.pixels_per_degree
    ax[0, 1].hist(amp, bins=40, color="C1", alpha=0.8)
    ax[0, 1].set(xlabel="saccade amplitude (deg)", ylabel="saccades",
                 title=f"saccade amplitudes: mean {summary['saccade_amplitude_deg_mean']:.2f} deg "
                       f"({motor.pixels_per_degree:g} px/deg)")
    ax[0, 1].title.set_fontsize(9)
    sac = trace["saccade_ms"][moved]
    if motor.timing == "gamma" and len(sac):
        micro = trace["micro"][moved] > 0
        ax[1, 0].scatter(amp[~micro], sac[~micro], s=4, alpha=0.3, label="saccades")
        ax[1, 0].scatter(amp[micro], sac[micro], s=4, alpha=0.5, color="C3", label="microsaccades")
        a = np.linspace(0, max(amp.max(), 1e-3), 50)
        ax[1, 0].plot(a, motor.saccade_intercept_ms + motor.saccade_slope_ms * a, "k", lw=1,
                      label=f"configured {motor.saccade_intercept_ms:g} + {motor.saccade_slope_ms:g} A")
        if "main_sequence_slope_ms_per_deg" in summary:
            ax[1, 0].set_title(f"main sequence: fit {summary['main_sequence_intercept_ms']:.1f} ms + "
                               f"{summary['main_sequence_slope_ms_per_deg']:.2f} ms/deg", fontsize=9)
        ax[1, 0].legend(fontsize=7)
    else:
        ax[1, 0].text(0.5, 0.5, "lockstep eyes: no saccade durations\n(eye.motor.timing = \"lockstep\")",
                      ha="center", va="center", transform=ax[1, 0].transAxes)
    ax[1, 0].set(xlabel="amplitude (deg)", ylabel="saccade duration (ms)")
    curve = coverage_curve(trace, grid)
    ax[1, 1].plot(np.arange(1, len(curve) + 1), curve, "C2")
    ax[1, 1].set(xlabel="fixations into the visit", ylabel="fraction of grid cells fixated", ylim=(0, 1.02),
                 title=f"coverage {summary['coverage']:.2f} per visit, revisit rate {summary['revisit_rate']:.2f}")
    ax[1, 1].title.set_fontsize(9)
    fig.tight_layout()
    return save(fig, out, "eye_movements", {"fixation_ms": fix, "amplitude_deg": amp, "saccade_ms": sac,
                                            "coverage_curve": curve})


def coverage_curve(trace: dict[str, np.ndarray], grid: np.ndarray) -> np.ndarray:
    """Mean over visits of the fraction of grid cells fixated after n fixations (n = 1 .. the longest visit;
    a visit that ended keeps its final coverage)."""
    cells = nearest_cells(trace["gaze"], grid)
    runs = [cells[rows] for rows in visits(trace)]
    n = max(len(r) for r in runs)
    curves = np.zeros((len(runs), n))
    for i, r in enumerate(runs):
        seen, c = set(), []
        for cell in r:
            seen.add(int(cell))
            c.append(len(seen))
        curves[i] = np.array(c + [c[-1]] * (n - len(c))) / len(grid)
    return curves.mean(0)
