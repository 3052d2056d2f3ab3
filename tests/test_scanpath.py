"""Eye-movement statistics of a scan-path trace against hand-counted values."""
import numpy as np

from saccade_sim.analysis.scanpath import coverage_and_revisits, coverage_curve, eye_movement_stats, visits
from saccade_sim.oculomotor import MotorConfig

GRID = np.array([[0, 0], [0, 4], [4, 0], [4, 4]])


def trace(cells, stimuli, eyes):
    n = len(cells)
    gaze = GRID[cells] + np.array([[0.4, -0.3]] * n)  # off-grid gazes count at their nearest grid point
    return {"eye": np.array(eyes, float), "stimulus": np.array(stimuli, float), "gaze": gaze,
            "end_ms": np.arange(n, dtype=float) * 100, "fixation_ms": np.full(n, 100.0),
            "saccade_ms": np.r_[np.nan, np.full(n - 1, 30.0)], "amplitude_px": np.r_[np.nan, np.full(n - 1, 4.0)],
            "micro": np.zeros(n)}


def test_coverage_and_revisits_count_cells_per_visit():
    # eye 0: stimulus 5 at cells 0, 1, 0, 2 (one revisit of 3), then stimulus 6 at cell 3; eye 1: cells 1, 1
    t = trace([0, 1, 0, 2, 3, 1, 1], [5, 5, 5, 5, 6, 5, 5], [0, 0, 0, 0, 0, 1, 1])
    assert [len(v) for v in visits(t)] == [4, 1, 2]
    coverage, revisits = coverage_and_revisits(t, GRID)
    assert np.isclose(coverage, np.mean([3 / 4, 1 / 4, 1 / 4])) and np.isclose(revisits, 2 / 4)
    assert np.allclose(coverage_curve(t, GRID), np.mean([[1, 2, 2, 3], [1, 1, 1, 1], [1, 1, 1, 1]], 0) / 4)


def test_main_sequence_fit_and_fixation_numbers():
    t = trace([0, 1, 2, 3, 0, 1], [1] * 6, [0] * 6)
    t["amplitude_px"][1:] = [2.0, 4.0, 6.0, 8.0, 10.0]
    t["saccade_ms"][1:] = 21.0 + 2.2 * t["amplitude_px"][1:] / 4.0
    stats = eye_movement_stats(t, GRID, MotorConfig(timing="gamma", pixels_per_degree=4.0), 100.0)
    assert np.isclose(stats["main_sequence_intercept_ms"], 21.0) and np.isclose(stats["main_sequence_slope_ms_per_deg"], 2.2)
    assert stats["fixation_ms_mean"] == 100.0 and stats["fixations"] == 6
    assert np.isclose(stats["saccade_amplitude_deg_mean"], 1.5)
