"""Asynchronous eyes: gamma fixations, main-sequence saccades, binned events, the scan-path trace, resume."""
import numpy as np
import pytest
import torch
from scipy import stats

from conftest import data_path, run_and_resumed_run
from saccade_sim.asynchronous import AsynchronousEye
from saccade_sim.config import EyeConfig, resolve
from saccade_sim.errors import ConfigError
from saccade_sim.experiment import Experiment
from saccade_sim.modalities.image import ImageModality, ImageOptions
from saccade_sim.oculomotor import MotorConfig, ScanpathTrace, gamma_draws
from saccade_sim.policies import RandomOptions, RandomPolicy


@pytest.mark.parametrize("shape", [0.7, 4.0])
def test_gamma_draws_follow_the_gamma_distribution(shape):
    x = gamma_draws(3000, shape, 70.0, torch.Generator().manual_seed(3)).numpy()
    assert stats.kstest(x, "gamma", args=(shape, 0, 70.0)).pvalue > 0.01


def free_eye(motor: MotorConfig, batch: int = 16, jump_prob: float = 0.2, seed: int = 0, shards: int = 2):
    modality = ImageModality(ImageOptions(patch=4), (1, 32, 32))
    store = torch.randn(40, 1, 32, 32)
    cfg = EyeConfig(batch=batch, fixation_ms=280.0, jump_prob=jump_prob, shards=shards, motor=motor)
    eye = AsynchronousEye(modality, store, torch.zeros(40, dtype=torch.long), RandomPolicy(RandomOptions(free=True)),
                          cfg, seed)
    eye.trace = ScanpathTrace(100000, 2)
    return eye


def run_events(eye, n):
    events = []
    for _ in range(n):
        t = eye.next_time()
        events.append(eye.next_glimpse(t))
    return events


MOTOR = MotorConfig(timing="gamma", fixation_shape=3.0, saccade_intercept_ms=21.0, saccade_slope_ms=2.2,
                    pixels_per_degree=4.0, bin_ms=10.0)


def test_long_run_statistics_match_the_configured_distributions():
    eye = free_eye(MOTOR, batch=128)
    run_events(eye, 400)
    trace = eye.trace.arrays()
    assert stats.kstest(trace["fixation_ms"], "gamma", args=(3.0, 0, 280.0 / 3.0)).pvalue > 0.01
    assert abs(trace["fixation_ms"].mean() - 280.0) < 15
    moved = ~np.isnan(trace["saccade_ms"])
    slope, intercept = np.polyfit(trace["amplitude_px"][moved] / 4.0, trace["saccade_ms"][moved], 1)
    assert abs(intercept - 21.0) < 1e-6 and abs(slope - 2.2) < 1e-6


def test_binned_events_are_time_ordered_and_every_fixation_is_emitted_once():
    eye = free_eye(MOTOR, batch=64)
    events = run_events(eye, 300)
    times = np.array([g.time for g in events])
    assert (np.diff(times) > 0).all() and (np.isclose(times % 10.0, 0) | np.isclose(times % 10.0, 10.0)).all()
    trace = eye.trace.arrays()
    emitted_at = np.concatenate([np.full(len(g.eyes), g.time) for g in events])
    # each fixation ends in the bin of the event that emits it, and no eye appears twice in one event
    assert ((trace["end_ms"] < emitted_at) & (trace["end_ms"] >= emitted_at - 10.0)).all()
    assert all(len(torch.unique(g.eyes)) == len(g.eyes) for g in events)
    for b in range(eye.batch):  # nothing dropped: each eye's fixations chain end to end (saccade, then fixation)
        mine = trace["eye"] == b
        end, fix, sac = trace["end_ms"][mine], trace["fixation_ms"][mine], trace["saccade_ms"][mine]
        assert np.isclose(end[0], fix[0]) and np.allclose(end[1:], end[:-1] + sac[1:] + fix[1:])
        assert mine.sum() == int(eye.count[b]) - (0 if eye.pending[b] else 1)  # every drawn fixation but the next
    assert eye.emitted == len(trace["eye"]) == sum(len(g.eyes) for g in events)


def test_an_eye_in_flight_gives_no_glimpse():
    """Saccadic suppression: between the end of one fixation and the landing of the next saccade, an eye is
    in no event."""
    eye = free_eye(MOTOR, batch=4)
    events = run_events(eye, 400)
    trace = eye.trace.arrays()
    for b in range(4):
        mine = trace["eye"] == b
        flights = np.stack([trace["end_ms"][mine][:-1], trace["end_ms"][mine][:-1] + trace["saccade_ms"][mine][1:]], 1)
        seen = np.array([g.time for g in events if b in g.eyes.tolist()])
        inside = (seen[:, None] > flights[None, :, 0] + 10.0) & (seen[:, None] <= flights[None, :, 1])
        assert not inside.any()


def test_microsaccades_and_drift_move_the_gaze_a_little():
    motor = MotorConfig(timing="gamma", microsaccade_prob=0.5, microsaccade_px=2, drift_px=0.0)
    eye = free_eye(motor, batch=64, jump_prob=0.0)
    run_events(eye, 300)
    t = eye.trace.arrays()
    micro = t["micro"] == 1
    later = ~np.isnan(t["saccade_ms"])  # an eye's first fixation follows no movement
    assert 0.42 < micro[later].mean() < 0.58
    assert (t["amplitude_px"][micro] <= 2 * 2 ** 0.5 + 1e-9).all()


def test_asynchronous_runs_resume_bit_identically(tmp_path):
    cfg = {"data": {"source": str(data_path("digits8x8.npz")), "train_limit": 64, "test_limit": 32},
           "glimpse": {"patch": 4, "stride": 2},
           "eye": {"batch": 8, "policy": "ior", "fixation_ms": 60.0,
                   "motor": {"timing": "gamma", "microsaccade_prob": 0.2, "drift_px": 2.0}},
           "rule": {"name": "oja"}, "network": {"layers": [{"channels": 4}]},
           "run": {"events": 40, "progress": False}, "probe": {"enabled": False}, "record": {"scanpath": 500}}
    reference, resumed = run_and_resumed_run(cfg, 17, tmp_path)
    a, b = reference.eye.trace.arrays(), resumed.eye.trace.arrays()
    assert all(np.array_equal(a[k], b[k], equal_nan=True) for k in a)
    assert reference.eye.time == resumed.eye.time and reference.eye.emitted == resumed.eye.emitted


def test_what_asynchronous_eyes_cannot_serve_is_a_config_error():
    base = {"data": {"source": str(data_path("digits8x8.npz")), "train_limit": 32, "test_limit": 16},
            "glimpse": {"patch": 4, "stride": 2}, "eye": {"motor": {"timing": "gamma"}},
            "network": {"layers": [{"channels": 4}]}, "run": {"progress": False}}
    with pytest.raises(ConfigError, match="record.monitors"):
        Experiment({**base, "rule": {"name": "oja"}, "record": {"monitors": [{"target": "eye", "quantity": "gaze"}]}})
    two = {**base, "rule": {"name": "oja"}, "network": {"layers": [{"channels": 4}, {"channels": 4}],
                                                          "edges": [{"source": "layer2", "target": "layer1",
                                                                     "kind": "topdown"}]}}
    with pytest.raises(ConfigError, match=r"network.edges\[0\]: a topdown edge"):
        Experiment(two)
    Experiment({**two, "eye": {"motor": {"timing": "lockstep"}}})  # the same graph with lockstep eyes builds
    with pytest.raises(ConfigError, match="eye.motor.bin_ms"):
        resolve({"eye": {"motor": {"timing": "gamma", "bin_ms": 30.0}}})
