"""Recording: ring buffers stay bounded and ordered; monitors sample on schedule and survive a save/load."""
import numpy as np
import pytest
import torch

from saccade_sim.config import MonitorSpec
from saccade_sim.errors import ConfigError
from saccade_sim.experiment import Experiment
from saccade_sim.monitors import Monitor, RingBuffer
from conftest import data_path


def test_ring_buffer_is_bounded_and_ordered():
    buf = RingBuffer(4)
    for i in range(11):
        buf.append(torch.full((2,), float(i)), time_ms=10.0 * i, event=i)
        assert buf.data.shape == (4, 2)  # preallocated once, never grows
    o = buf.ordered()
    assert o["data"][:, 0].tolist() == [7, 8, 9, 10]
    assert o["time_ms"].tolist() == [70, 80, 90, 100] and o["event"].tolist() == [7, 8, 9, 10]
    short = RingBuffer(5)
    for i in range(3):
        short.append(torch.tensor([i]), i, i)
    assert short.ordered()["event"].tolist() == [0, 1, 2]


def test_ring_buffer_state_round_trip_continues_in_order():
    a, b = RingBuffer(4), RingBuffer(4)
    for i in range(6):
        a.append(torch.tensor([float(i)]), i, i)
    b.load_state_dict(a.state_dict())
    for buf in (a, b):
        for i in range(6, 9):
            buf.append(torch.tensor([float(i)]), i, i)
    assert a.ordered()["event"].tolist() == b.ordered()["event"].tolist() == [5, 6, 7, 8]
    assert np.array_equal(a.ordered()["data"], b.ordered()["data"])


def test_sampling_schedule_in_events_and_in_ms():
    class G:
        def __init__(self, i):
            self.index = i

    by_events = Monitor(MonitorSpec(every=3), lambda g: torch.zeros(1), "m")
    assert [i for i in range(10) if by_events.due(G(i), 0.0)] == [2, 5, 8]
    by_ms = Monitor(MonitorSpec(every_ms=500.0), lambda g: torch.zeros(1), "m")
    times = [200.0 * (i + 1) for i in range(10)]  # 200, 400, ..., 2000
    assert [t for i, t in enumerate(times) if by_ms.due(G(i), t)] == [200.0, 600.0, 1000.0, 1600.0, 2000.0]


def small_config(**record):
    return {"data": {"source": str(data_path("digits8x8.npz"))}, "glimpse": {"patch": 4},
            "eye": {"batch": 4}, "network": {"preset": "tiny"}, "run": {"events": 23, "progress": False},
            "probe": {"enabled": False}, "record": record}


def test_monitors_record_what_they_are_asked_for_in_a_real_run(tmp_path):
    exp = Experiment(small_config(monitors=[
        {"target": "layer1", "quantity": "activity", "every": 2, "max_len": 5, "eyes": [1, 3]},
        {"target": "layer1", "quantity": "weights", "every": 10},
        {"target": "eye", "quantity": "modulator", "every_ms": 1000.0},
        {"target": "eye", "quantity": "gaze", "max_len": 100}]))
    exp.run(progress=False)
    exp.save(tmp_path)
    act = np.load(tmp_path / "record_layer1_activity.npz")
    assert act["data"].shape == (5, 2, *exp.layers[0].out_shape)
    assert act["event"].tolist() == [13, 15, 17, 19, 21] and np.all(np.diff(act["time_ms"]) == 400.0)
    w = np.load(tmp_path / "record_layer1_weights.npz")
    assert w["event"].tolist() == [9, 19] and w["data"].shape == (2, *exp.layers[0].weight.shape)
    assert not np.allclose(w["data"][0], w["data"][1])  # a copy at each sample, not a view of the live weights
    mod = np.load(tmp_path / "record_eye_modulator.npz")
    assert mod["time_ms"].tolist() == [200.0, 1000.0, 2000.0, 3000.0, 4000.0]
    gaze = np.load(tmp_path / "record_eye_gaze.npz")
    assert gaze["data"].shape == (23, 4, 2) and gaze["event"].tolist() == list(range(23))
    grid = exp.modality.space.grid.numpy()
    assert np.array_equal(gaze["data"][:, 0], grid[np.arange(23) % len(grid)])  # the raster scan path


def test_unknown_targets_and_quantities_are_named():
    with pytest.raises(ConfigError, match=r"record.monitors\[0\].target: unknown value 'layer9'"):
        Experiment(small_config(monitors=[{"target": "layer9"}]))
    with pytest.raises(ConfigError, match=r"record.monitors\[0\].quantity: unknown value 'gaze'.*activity"):
        Experiment(small_config(monitors=[{"target": "layer1", "quantity": "gaze"}]))
    with pytest.raises(ConfigError, match="dendritic"):
        Experiment({**small_config(monitors=[{"target": "layer1", "quantity": "dendrite"}]), "rule": {"name": "oja"}})


def test_loss_is_recorded_for_a_loss_form_rule_and_monitors_round_trip_through_state_dict():
    cfg = small_config(monitors=[{"target": "layer1", "quantity": "loss", "max_len": 8}])
    cfg["rule"] = {"name": "oja", "form": "loss"}
    exp = Experiment(cfg)
    exp.simulate(progress=False)
    state = exp.state_dict()["stateful"]["monitor:layer1_loss"]
    assert len(state["buffer"]["time_ms"]) == 8 and torch.isfinite(state["buffer"]["data"]).all()
    again = Experiment(cfg)
    again.monitors[0].load_state_dict(state)
    assert np.array_equal(again.monitors[0].buffer.ordered()["data"], exp.monitors[0].buffer.ordered()["data"])
