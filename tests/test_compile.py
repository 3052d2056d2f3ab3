"""run.compile: each layer's per-event step (forward, rule update, adaptation, optimiser step) through
torch.compile gives the same updates as the eager step (on CPU; CUDA graphs need a GPU)."""
import pytest
import torch
import torch._dynamo

from conftest import data_path
from saccade_sim.config import resolve
from saccade_sim.errors import ConfigError
from saccade_sim.experiment import Experiment


def run(rule: str, compile: str, events: int, device: str = "cpu") -> Experiment:
    exp = Experiment({"device": device, "data": {"source": str(data_path("mnist5k.npz")), "train_limit": 100, "test_limit": 20},
                      "eye": {"batch": 4}, "rule": {"name": rule},
                      "network": {"layers": [{"channels": 4, "pool": 2, "center": 0.01}, {"channels": 6}]},
                      "run": {"progress": False, "check_every": 4, "compile": compile}, "probe": {"enabled": False}})
    exp.simulate(events)
    return exp


def assert_same_updates(rule: str, mode: str, events: int, device: str = "cpu") -> None:
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    eager, compiled = run(rule, "none", events, device), run(rule, mode, events, device)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= len(compiled.agents)  # graphs were captured
    for a, b, initial in zip(eager.agents, compiled.agents, eager.initial_layers):
        assert not torch.equal(a.layer.weight, initial.weight) and b.event is not b._event
        for (name, x), (_, y) in zip(a.layer.state_dict().items(), b.layer.state_dict().items()):
            torch.testing.assert_close(y, x, rtol=1e-5, atol=1e-6, msg=f"{a.name}.{name}")
    for h_e, h_c in zip(eager.history, compiled.history, strict=True):
        assert h_e.keys() == h_c.keys() and all(h_c[k] == pytest.approx(v, rel=1e-4) for k, v in h_e.items())


def test_the_captured_step_gives_the_same_updates_as_the_eager_step():
    assert_same_updates("oja", "aot_eager", 9)


@pytest.mark.slow
@pytest.mark.parametrize("rule, mode", [("oja", "default"), ("clapp", "aot_eager")])
def test_the_compiled_step_gives_the_same_updates(rule, mode):
    assert_same_updates(rule, mode, 12)  # inductor's CPU code generation: about a minute


def test_compile_values_are_checked():
    with pytest.raises(ConfigError, match="run.compile: unknown value 'fast'; valid choices: none, default"):
        resolve({"run": {"compile": "fast"}})


def test_compile_with_a_learning_rate_schedule_is_refused():
    with pytest.raises(ConfigError, match="run.compile: not supported with a learning-rate schedule"):
        Experiment({"data": {"source": str(data_path("mnist5k.npz")), "train_limit": 20, "test_limit": 10},
                    "network": {"preset": "tiny"}, "rule": {"name": "oja", "schedule": {"kind": "cosine"}},
                    "run": {"progress": False, "compile": "aot_eager"}, "probe": {"enabled": False}})
