"""On a CUDA device (skipped elsewhere): the run draws what a CPU run draws, learns what it learns, does not
synchronise with the host between checks, compiles its step to CUDA graphs with the same updates, and runs
4096 eyes at once."""
import pytest
import torch

from conftest import data_path
from saccade_sim.experiment import Experiment
from test_compile import assert_same_updates

pytestmark = pytest.mark.gpu


def experiment(device: str, rule: str = "oja", batch: int = 8, check_every: int = 10, **run) -> Experiment:
    return Experiment({"device": device, "data": {"source": str(data_path("mnist5k.npz")), "train_limit": 500,
                                                  "test_limit": 50},
                       "eye": {"batch": batch}, "network": {"preset": "small"}, "rule": {"name": rule},
                       "run": {"progress": False, "check_every": check_every, **run}, "probe": {"enabled": False}})


@pytest.mark.parametrize("rule", ["oja", "clapp"])
def test_a_cuda_run_draws_what_a_cpu_run_draws_and_learns_the_same_weights(rule):
    cpu, gpu = experiment("cpu", rule), experiment("cuda", rule)
    for _ in range(12):
        a, b = cpu.eye.next_glimpse(0.0), gpu.eye.next_glimpse(0.0)
        assert b.data.is_cuda and all(torch.equal(getattr(a, f), getattr(b, f).cpu())
                                      for f in ("stimulus", "gaze", "label", "modulator"))
        torch.testing.assert_close(b.data.cpu(), a.data)
    cpu, gpu = experiment("cpu", rule), experiment("cuda", rule)
    cpu.simulate(30), gpu.simulate(30)
    for a, b in zip(cpu.layers, gpu.layers):  # float32 kernels differ (TF32 off by default for convolutions: tight)
        torch.testing.assert_close(b.weight.cpu(), a.weight, rtol=1e-3, atol=1e-3)


def test_no_host_synchronisation_between_checks():
    """CUDA's own sync detector raises on any synchronising call outside the check every run.check_every events."""
    exp = experiment("cuda", "oja", check_every=1000)
    exp.simulate(5)  # warm-up: lazy state, the first block of draws
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        exp.simulation.run(200)  # inside the first block of 256 events, before the check at event 1000
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_cuda_graphs_give_the_same_updates_as_the_eager_step():
    assert_same_updates("oja", "reduce-overhead", 12, "cuda")


def test_four_thousand_eyes_run_and_learn():
    exp = experiment("cuda", "clapp", batch=4096, check_every=4)
    exp.simulate(8)
    assert all(h["event"] for h in exp.history) and len(exp.history) == 2
    assert all(not torch.equal(a.weight, b.weight) for a, b in zip(exp.layers, exp.initial_layers))
