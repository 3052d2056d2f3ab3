"""Live logs (TensorBoard events, history.csv) and progress bars that do not flood a log file."""
import csv

import numpy as np
import pytest

from saccade_sim import progress
from saccade_sim.cli import main
from conftest import data_path


def test_tensorboard_and_csv_follow_the_history(tmp_path):
    out = tmp_path / "run"
    assert main(["run", "--quiet", "--out", str(out), "--set", f"data.source={data_path('mnist5k.npz')}",
                 "--set", "run.events=30", "--set", "run.check_every=10", "--set", "eye.batch=8",
                 "--set", "probe.train=80", "--set", "probe.test=50", "--set", "network.preset=tiny",
                 "--set", "probe.every_ms=2000", "--set", "log.tensorboard=true", "--set", "log.csv=true"]) == 0
    history = np.load(out / "history.npz")
    rows = list(csv.DictReader(open(out / "history.csv")))
    assert [int(r["event"]) for r in rows] == [10, 20, 30] == history["event"].tolist()
    assert [float(r["layer1/update"]) for r in rows] == pytest.approx(history["layer1.update"].tolist())

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert {"layer1/update", "layer1/weight_norm", "probe/layer1", "final/layer1", "final/input"} <= set(tags)
    assert [e.step for e in events.Scalars("layer1/update")] == [10, 20, 30]
    assert [e.value for e in events.Scalars("layer1/update")] == pytest.approx(history["layer1.update"].tolist())
    assert [e.step for e in events.Scalars("probe/layer1")] == [10, 20, 30]


def test_a_bar_writes_few_whole_lines_into_a_log(capsys, monkeypatch):
    monkeypatch.setattr(progress, "LOG_INTERVAL_S", 3600.0)
    with progress.bar(1000, "work") as bar:
        for _ in range(1000):
            bar.update()
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.splitlines()
    assert 1 <= len(lines) <= 3 and lines[-1].startswith("work: 100%")


def test_an_extended_run_continues_its_logs_without_repeating_steps(tmp_path):
    out = tmp_path / "run"
    common = ["--quiet", "--set", "run.check_every=10", "--set", "log.tensorboard=true", "--set", "log.csv=true"]
    assert main(["run", *common, "--out", str(out), "--set", f"data.source={data_path('mnist5k.npz')}",
                 "--set", "run.events=20", "--set", "eye.batch=8", "--set", "probe.train=80",
                 "--set", "probe.test=50", "--set", "network.preset=tiny"]) == 0
    assert main(["run", "--quiet", "--resume", str(out), "--set", "run.events=30"]) == 0
    assert [int(r["event"]) for r in csv.DictReader(open(out / "history.csv"))] == [10, 20, 30]

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    assert sorted(e.step for e in events.Scalars("layer1/update")) == [10, 20, 30]
