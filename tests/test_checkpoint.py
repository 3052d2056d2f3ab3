"""Reproducibility and checkpoint/resume: seeded streams, bit-identical resume (in process and after
SIGKILL / Ctrl-C of the CLI), crash-safe writes, divergence stops that keep the last good checkpoint."""
import json
import signal
import time

import numpy as np
import pytest
import torch

from saccade_sim import io
from saccade_sim.checkpoint import resume
from saccade_sim.cli import main
from saccade_sim.experiment import TIMING_FIELDS, Experiment
from saccade_sim.seeding import eye_generator
from conftest import cli_process, data_path


def config(**run):
    """A small run exercising every kind of state: conv + dense layers with conduction delays, Adam
    state, kwta thresholds (a rule buffer), random saccades, jumps and a dwell (stream position)."""
    return {
        "data": {"source": str(data_path("digits8x8.npz"))}, "glimpse": {"patch": 4},
        "eye": {"batch": 4, "policy": "random", "jump_prob": 0.3, "dwell": 5},
        "network": {"layers": [{"channels": 6, "pool": 2, "delay_ms": 10.0},
                               {"kind": "dense", "channels": 5, "delay_ms": 30.0}]},
        "rule": {"name": "oja", "optimizer": "adam", "lr": 0.01, "competition": "kwta", "threshold_rate": 0.1},
        "run": {"events": 16, "check_every": 5, "progress": False, **run},
        "probe": {"train": 30, "test": 15},
    }


def science(results):
    return {k: v for k, v in results.items() if k not in TIMING_FIELDS}


def weights(exp):
    return [p.detach().clone() for a in exp.agents for p in a.parameters()]


def assert_same(exp_a, exp_b):
    assert all(torch.equal(a, b) for a, b in zip(weights(exp_a), weights(exp_b)))
    assert exp_a.history == exp_b.history


def test_same_seed_same_everything_and_streams_are_per_layer(reference):
    a, ra = reference
    b = Experiment(config())
    rb = b.run()
    assert science(ra) == science(rb)
    assert_same(a, b)
    c = Experiment({**config(), "seed": 1})
    assert not torch.equal(c.initial_layers[0].weight, a.initial_layers[0].weight)
    # layer i's initial weights come from its own stream: adding a layer leaves layer 1's unchanged
    three = config()
    three["network"]["layers"].append({"kind": "dense", "channels": 3})
    d = Experiment(three)
    assert torch.equal(d.initial_layers[0].weight, a.initial_layers[0].weight)
    assert not torch.equal(a.initial_layers[0].weight.flatten()[:6], a.initial_layers[1].weight.flatten()[:6])
    # the eye's stream is per logical shard
    draws = [torch.rand(4, generator=eye_generator(0, s)) for s in (0, 0, 1)]
    assert torch.equal(draws[0], draws[1]) and not torch.equal(draws[0], draws[2])


@pytest.fixture(scope="module")
def reference():
    torch.set_num_threads(2)
    ref = Experiment(config())
    return ref, ref.run()


@pytest.mark.parametrize("stop_at", [3, 11])  # inside a check interval and a dwell; at a check
def test_resume_is_bit_identical_in_process(stop_at, tmp_path, reference):
    ref, r_ref = reference
    first = Experiment(config())
    first.simulate(stop_at)
    io.save_torch(tmp_path / "checkpoint.pt", first.state_dict())
    second = resume(tmp_path)
    assert second.eye.event == stop_at and second.simulation.env.now == first.simulation.env.now
    r = second.run()
    assert science(r) == science(r_ref)
    assert_same(ref, second)
    assert all(torch.equal(x.weight, y.weight) for x, y in zip(ref.initial_layers, second.initial_layers))


class Recorder:
    """A stand-in monitor: records glimpse times, saved through Experiment.register_state."""

    def __init__(self):
        self.times = torch.zeros(0)

    def __call__(self, glimpse):
        self.times = torch.cat([self.times, torch.tensor([glimpse.time])])

    def state_dict(self):
        return {"times": self.times}

    def load_state_dict(self, state):
        self.times = state["times"].clone()


def test_registered_recorders_are_checkpointed(tmp_path):
    def build():
        exp = Experiment(config())
        rec = Recorder()
        exp.every(2, rec)
        exp.register_state("recorder", rec)
        return exp, rec

    ref, rec_ref = build()
    ref.simulate()
    exp, _ = build()
    exp.simulate(9)
    state = io.load_torch(_saved(exp, tmp_path))
    again, rec = build()
    again.load_state_dict(state)
    again.simulate()
    assert torch.equal(rec.times, rec_ref.times) and len(rec.times) == 8


def _saved(exp, folder):
    io.save_torch(folder / "c.pt", exp.state_dict())
    return folder / "c.pt"


def test_a_crash_while_writing_leaves_the_old_file(tmp_path):
    path = tmp_path / "checkpoint.pt"
    io.save_torch(path, {"event": 1})

    def crash(p):
        p.write_bytes(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        io.atomic_write(path, crash)
    assert io.load_torch(path) == {"event": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]


def test_divergence_names_layer_and_time_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["run", "--quiet", "--out", str(out), "--set", f"data.source={data_path('digits8x8.npz')}",
               "--set", "glimpse.patch=4", "--set", "network.layers=[{kind='dense', channels=4}]",
               "--set", "rule.name=hebb", "--set", "rule.normalize=false", "--set", "rule.lr=0.5",
               "--set", "run.events=400", "--set", "run.check_every=2", "--checkpoint-every", "4"])
    err = capsys.readouterr().err
    assert rc == 3 and "layer layer1 diverged at t = " in err and "ms (" in err
    assert "last good checkpoint" in err and "no results.json" in err
    assert not (out / "results.json").exists()
    state = io.load_torch(out / "checkpoint.pt")
    event = state["eye"]["event"]
    assert 0 < event < 400 and f"event {event})" in err
    w = state["agents"][0]["layer"]["op.weight"]
    assert torch.isfinite(w).all() and float(w.norm()) <= 1e4


# -- the CLI killed and resumed -----------------------------------------------------------------
CLI_RUN = ["--quiet", "--set", f"data.source={data_path('digits8x8.npz')}", "--set", "glimpse.patch=4",
           "--set", "eye.jump_prob=0.2", "--set", "eye.batch=4",
           "--set", "network.layers=[{kind='dense', channels=16, delay_ms=5.0}, {kind='dense', channels=8}]",
           "--set", "rule.optimizer=adam", "--set", "rule.lr=0.003", "--set", "run.check_every=7",
           "--set", "probe.train=40", "--set", "probe.test=20"]


def _cli(args, **popen):
    return cli_process(["run", *args], **popen)


def _event_of(path):
    try:
        return io.load_torch(path)["eye"]["event"]
    except Exception:  # not written yet
        return -1


def _stop_after(proc, checkpoint, event, sig):
    """Send ``sig`` once ``checkpoint`` holds at least ``event`` events (mid-chunk, a moment later)."""
    deadline = time.time() + 120
    while _event_of(checkpoint) < event:
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline
        time.sleep(0.02)
    proc.send_signal(sig)
    return proc.communicate(timeout=120)


def _final(out):
    r = json.loads((out / "results.json").read_text())
    state = io.load_torch(out / "checkpoint.pt")
    history = np.load(out / "history.npz")
    return science(r), state["agents"], {k: history[k] for k in history.files}


def _kill_and_resume(tmp_path, capsys, stops, glimpses, every):
    """The interrupted run is launched open-ended (run.events = 10**6, so a kill never comes too late on a
    fast machine), stopped at each ``(event, signal)``, resumed, and finally resumed in process with
    ``--set run.events=N``: its science must equal an uninterrupted N-event run's, bit for bit."""
    ref = tmp_path / "ref"
    assert main(["run", *CLI_RUN, "--set", f"run.events={glimpses}", "--out", str(ref)]) == 0
    out = tmp_path / "run"
    args = [*CLI_RUN, "--set", "run.events=1000000", "--checkpoint-every", str(every), "--out", str(out)]
    for event, sig in stops:
        proc = _cli(args)
        _, err = _stop_after(proc, out / "checkpoint.pt", event, sig)
        assert proc.returncode == (-signal.SIGKILL if sig == signal.SIGKILL else 128 + sig), err
        assert not (out / "results.json").exists()
        if sig != signal.SIGKILL:  # Ctrl-C, SIGTERM: a clean stop with a checkpoint at the stopping point
            assert f"checkpoint written to {out / 'checkpoint.pt'}" in err and f"--resume {out}" in err, err
            assert f"stopped at event {_event_of(out / 'checkpoint.pt')} " in err
        args = ["--resume", str(out), "--quiet"]
    assert _event_of(out / "checkpoint.pt") < glimpses
    capsys.readouterr()
    assert main(["run", *args, "--set", f"run.events={glimpses}"]) == 0
    (r_ref, w_ref, h_ref), (r, w, h) = _final(ref), _final(out)
    assert r == r_ref
    for a, b in zip(w_ref, w):
        for k in a["layer"]:
            assert torch.equal(a["layer"][k], b["layer"][k])
    assert h.keys() == h_ref.keys() and all(np.array_equal(h[k], h_ref[k], equal_nan=True) for k in h)


def test_sigkill_and_ctrl_c_then_resume_equal_an_uninterrupted_run(tmp_path, capsys):
    _kill_and_resume(tmp_path, capsys, [(10, signal.SIGKILL), (30, signal.SIGINT), (50, signal.SIGTERM),
                                         (70, signal.SIGKILL)], glimpses=120, every=10)


@pytest.mark.slow
def test_many_sigkills_then_resume_equal_an_uninterrupted_run(tmp_path, capsys):
    stops = [(e, (signal.SIGINT, signal.SIGKILL, signal.SIGTERM)[i % 3]) for i, e in enumerate(range(5, 400, 40))]
    _kill_and_resume(tmp_path, capsys, stops, glimpses=600, every=5)


def test_resume_refuses_a_complete_run_and_extends_one(tmp_path, capsys):
    out = tmp_path / "run"
    base = [*CLI_RUN, "--set", "run.events=10", "--set", "network.layers=[{kind='dense', channels=4}]"]
    assert main(["run", *base, "--out", str(out)]) == 0
    assert main(["run", "--resume", str(out)]) == 2
    assert "already complete" in capsys.readouterr().err
    assert main(["run", "--resume", str(out), "--set", "rule.lr=1"]) == 2
    assert "cannot change when resuming" in capsys.readouterr().err
    assert main(["run", "--resume", str(out), "--quiet", "--set", "run.events=16"]) == 0
    assert json.loads((out / "results.json").read_text())["events"] == 16
