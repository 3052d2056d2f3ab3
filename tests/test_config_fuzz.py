"""Property: any configuration either runs or fails with one of saccade-sim's documented errors
(saccade_sim.errors), never with a raw traceback. Tiny networks on the 8x8 digits keep it fast."""
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from saccade_sim.cli import main
from saccade_sim.errors import SaccadeSimError
from saccade_sim.experiment import Experiment
from conftest import data_path

#: per key, values that are valid, wrong in value, or wrong in type
VALUES = {
    ("seed",): st.one_of(st.integers(-5, 2**40), st.just("x")),
    ("device",): st.sampled_from(["cpu", "cuda", "cuda:7", "tpu", "cpu:0"]),
    ("data", "train_limit"): st.integers(-1, 40),
    ("data", "test_fraction"): st.sampled_from([0.2, 0.0, 1.5]),
    ("data", "normalize"): st.sampled_from(["standard", "none", "zca"]),
    ("glimpse", "patch"): st.integers(-1, 10),
    ("glimpse", "stride"): st.integers(-1, 5),
    ("glimpse", "color"): st.sampled_from(["gray", "rgb", "auto", "cmyk"]),
    ("eye", "policy"): st.sampled_from(["raster", "random", "zigzag"]),
    ("eye", "batch"): st.one_of(st.integers(-1, 5), st.just(2.5)),
    ("eye", "jump_prob"): st.sampled_from([0.0, 0.5, 1.0, 2.0]),
    ("eye", "dwell"): st.integers(-1, 4),
    ("eye", "fixation_ms"): st.sampled_from([200.0, 0.0, 1.0]),
    ("rule", "name"): st.sampled_from(["oja", "instar", "hebb", "backprop"]),
    ("rule", "lr"): st.sampled_from([0.0, 0.01, 1e6, -1.0]),
    ("rule", "optimizer"): st.sampled_from(["sgd", "adam", "adamw", "lbfgs"]),
    ("rule", "form"): st.sampled_from(["closed", "loss"]),
    ("rule", "normalize"): st.booleans(),
    ("rule", "competition"): st.sampled_from(["none", "kwta", "soft", "max"]),
    ("rule", "k"): st.integers(0, 12),
    ("rule", "bogus"): st.just(1),
    ("run", "events"): st.integers(0, 6),
    ("run", "check_every"): st.integers(0, 3),
    ("run", "checkpoint_every"): st.integers(-1, 3),
    ("probe", "pool"): st.integers(0, 3),
    ("probe", "aggregate"): st.sampled_from(["concat", "mean", "max"]),
    ("probe", "train"): st.integers(0, 30),
    ("probe", "enabled"): st.sampled_from([True, False, "yes"]),
}

LAYER = st.fixed_dictionaries({}, optional={
    "kind": st.sampled_from(["conv", "dense", "lstm"]),
    "channels": st.integers(-1, 6),
    "kernel": st.integers(0, 9),
    "stride": st.integers(1, 3),
    "padding": st.integers(-1, 2),
    "pool": st.integers(1, 5),
    "activation": st.sampled_from(["relu", "tanh", "linear", "swish"]),
    "delay_ms": st.sampled_from([0.0, 50.0, 300.0]),
})


@st.composite
def configs(draw):
    tree = {"data": {"source": str(data_path("digits8x8.npz")), "test_limit": 30},
            "glimpse": {"patch": 4}, "network": {"preset": "tiny"},
            "eye": {"batch": 2}, "run": {"events": 3, "progress": False},
            "probe": {"train": 30, "test": 20, "batch": 16}}
    for key in draw(st.lists(st.sampled_from(sorted(VALUES)), max_size=6, unique=True)):
        node = tree
        for part in key[:-1]:
            node = node.setdefault(part, {})
        node[key[-1]] = draw(VALUES[key])
    if draw(st.booleans()):
        tree["network"] = {"layers": draw(st.lists(LAYER, min_size=1, max_size=2))}
    return tree


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs())
def test_any_config_runs_or_fails_with_a_documented_error(tree):
    try:
        results = Experiment(tree).run(progress=False)
    except SaccadeSimError as exc:
        assert str(exc)  # a message, never empty
        return
    assert results["events"] == tree["run"]["events"]
    json.dumps(results)  # the results tree is always serialisable


def test_cli_turns_documented_errors_into_one_line(tmp_path, capsys):
    rc = main(["run", "--quiet", "--set", "eye.batch=-1", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and err.startswith("saccade-sim: error: eye.batch")
    assert not (tmp_path / "o").exists()
