"""Per-layer rule settings (``[[rule.layers]]``) and learning-rate schedules (``[rule.schedule]``)."""
import math

import pytest
import torch

from agents.agent import schedule_factor
from saccade_sim.config import resolve
from saccade_sim.errors import ConfigError
from saccade_sim.experiment import Experiment
from conftest import data_path, run_and_resumed_run

SCHEDULE = dict(warmup=0, horizon=100, min_factor=0.0, step_every=10, gamma=0.5)


def expected(event: int, kind: str, warmup: int = 0, horizon: int = 100, floor: float = 0.0, hold: int = 0) -> float:
    """An independent statement of the schedules: nothing for ``hold`` steps, then warm-up ramps linearly to 1
    over ``warmup`` steps; cosine then falls to ``floor`` at ``horizon`` (counted from step 0) and stays there;
    step halves every 10 steps."""
    if event < hold:
        return 0.0
    if event < hold + warmup:
        return (event - hold + 1) / warmup
    t = event - hold - warmup
    if kind == "cosine":
        progress = min(t / (horizon - hold - warmup), 1.0)
        return floor + (1 - floor) * (math.cos(math.pi * progress) + 1) / 2
    if kind == "step":
        return 0.5 ** math.floor(t / 10)
    return 1.0


@pytest.mark.parametrize("kind", ["constant", "cosine", "step"])
@pytest.mark.parametrize("warmup", [0, 5])
@pytest.mark.parametrize("hold", [0, 7])
def test_schedule_factor_matches_its_equation(kind, warmup, hold):
    for event in [0, 1, 4, 5, 6, 7, 8, 12, 13, 30, 50, 99, 100, 150]:
        floor = 0.1 if kind == "cosine" else 0.0
        got = schedule_factor(event, kind, **{**SCHEDULE, "warmup": warmup, "min_factor": floor, "hold": hold})
        want = expected(event, kind, warmup, floor=floor, hold=hold)
        assert got == pytest.approx(want, abs=1e-12), (event, got, want)


def test_held_steps_keep_the_weights_while_the_thresholds_adapt():
    """Miconi's notebook changes no weight in its first 201 batches while the k-WTA thresholds adapt: with
    ``hold`` the optimiser steps at lr 0 for that long, then learns."""
    cfg = small(schedule={"hold": 3})
    cfg["rule"].update(name="instar", threshold_rate=3.0, homeostasis="supra", kwta_post="binary", k=1)
    exp = Experiment(cfg)
    start = [a.layer.weight.detach().clone() for a in exp.agents]
    thresholds = [a.rule.threshold.clone() for a in exp.agents]
    exp.simulate(3)
    for agent, w0, t0 in zip(exp.agents, start, thresholds):
        # unchanged but for the rounding of the unit-norm projection after each step, as in the notebook
        assert (agent.layer.weight - w0).abs().max() < 1e-6
        assert not torch.equal(agent.rule.threshold, t0)
        assert agent.optimizer.param_groups[0]["lr"] == pytest.approx(0.01)  # the next step learns
    exp.simulate(1)
    assert all((a.layer.weight - w0).abs().max() > 1e-4 for a, w0 in zip(exp.agents, start))


def small(**rule):
    return {"data": {"source": str(data_path("digits8x8.npz"))}, "glimpse": {"patch": 4},
            "eye": {"batch": 4, "jump_prob": 0.3},
            "network": {"layers": [{"channels": 6, "pool": 2}, {"kind": "dense", "channels": 5}]},
            "rule": {"name": "oja", "lr": 0.01, "competition": "kwta", **rule},
            "run": {"events": 12, "check_every": 4, "progress": False}, "probe": {"train": 30, "test": 15}}


def test_the_optimisers_follow_the_schedule_event_by_event():
    exp = Experiment(small(schedule={"kind": "cosine", "warmup": 3}))
    for event in range(1, 13):
        exp.simulate(1)
        for agent in exp.agents:
            # after `event` optimiser steps the scheduler has been stepped `event` times
            assert agent.optimizer.param_groups[0]["lr"] == pytest.approx(0.01 * expected(event, "cosine", 3, 12))


def test_per_layer_settings_reach_each_layer():
    exp = Experiment(small(normalize=False, layers=[{"lr": 0.05, "k": 2}, {"lr": 0.0, "optimizer": "adam",
                                                           "schedule": {"kind": "step", "step_every": 2}}]))
    first, second = exp.agents
    assert first.optimizer.param_groups[0]["lr"] == 0.05 and isinstance(first.optimizer, torch.optim.SGD)
    assert first.rule.options.k == 2 and second.rule.options.k == 1
    assert isinstance(second.optimizer, torch.optim.Adam) and first.scheduler is None
    before = [a.layer.weight.detach().clone() for a in exp.agents]
    exp.simulate(6)
    assert not torch.equal(before[0], first.layer.weight)  # lr 0.05 learns
    assert torch.equal(before[1], second.layer.weight)  # lr 0 does not
    # the resolved config round-trips through config.json's tree
    again = resolve(exp.config.to_dict())
    assert again.layer_rules == exp.config.layer_rules


@pytest.mark.parametrize("rule, message", [
    ({"layers": [{"lr": 0.1}]}, "rule.layers: 1 entries for a network of 2 layers"),
    ({"layers": [{"name": "hebb"}, {}]}, "rule.layers[0].name: cannot be set per layer"),
    ({"layers": [{}, {"k": 0}]}, "rule.layers[1].k: must be >= 1"),
    ({"layers": [{}, {"bogus": 1}]}, "unknown key rule.layers[1].bogus"),
    ({"layers": [{}, {"lr": -1.0}]}, "rule.layers[1].lr: must be >= 0"),
    ({"schedule": {"kind": "exp"}}, "rule.schedule.kind: unknown value 'exp'"),
    ({"schedule": {"min_factor": 2.0}}, "rule.schedule.min_factor: must be in [0, 1]"),
    ({"layers": [3, {}]}, "rule.layers[0]: expected a table"),
])
def test_bad_rule_settings_are_named(rule, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Experiment(small(**rule))


def test_resume_with_a_schedule_is_bit_identical(tmp_path):
    cfg = small(schedule={"kind": "cosine", "warmup": 2}, layers=[{"lr": 0.02}, {"optimizer": "adam"}])
    ref, second = run_and_resumed_run(cfg, 5, tmp_path)
    for a, b in zip(ref.agents, second.agents):
        assert a.optimizer.param_groups[0]["lr"] == b.optimizer.param_groups[0]["lr"]
