"""Closed-loop policies: a policy that subscribes to channels observes them after each event, before the next gaze."""
import pytest
import torch

from conftest import data_path
from saccade_sim import POLICIES
from saccade_sim.errors import ConfigError
from saccade_sim.experiment import Experiment
from saccade_sim.policies import RasterPolicy

SEEN: list[dict] = []


class Listener(RasterPolicy):
    """Raster fixations; records every observation and each layer's loss as the rule holds it then."""

    subscribes = ("layer1/loss", "layer2/activity", "gaze", "modulator", "stimulus")

    def observe(self, channels, gaze):
        SEEN.append({"channels": {k: v.clone() for k, v in channels.items()}, "gaze": gaze.clone(),
                     "rule_loss": self.experiment.agents[0].last_loss.clone()})


@pytest.fixture(autouse=True)
def listener(monkeypatch):
    """The test policy, registered for this module's tests only (other tests enumerate the policies)."""
    monkeypatch.setitem(POLICIES._items, "test_listener", Listener)


def config(policy: str, events: int = 12) -> dict:
    return {"data": {"source": str(data_path("cifar10_5k.npz")), "train_limit": 64, "test_limit": 16},
            "glimpse": {"patch": 8, "stride": 4, "color": "gray"},
            "eye": {"policy": policy, "batch": 4, "jump_prob": 0.3},
            "network": {"layers": [{"channels": 4, "pool": 2}, {"channels": 6, "pool": 2}]},
            "rule": {"name": "clapp", "sampling": "both"}, "run": {"events": events, "progress": False},
            "probe": {"enabled": False}}


def test_a_policy_subscribed_to_a_layers_loss_receives_it_per_eye_each_event():
    SEEN.clear()
    exp = Experiment(config("test_listener"))
    exp.eye.policy.experiment = exp
    glimpses = []
    exp.simulation.every(1, glimpses.append, channel=0)
    exp.simulate()
    assert len(SEEN) == 12  # after each event (once the last layer has processed it), before the next gaze
    for seen, g in zip(SEEN, glimpses):  # observation i follows event i
        ch = seen["channels"]
        assert set(ch) == set(Listener.subscribes)
        assert ch["layer1/loss"].shape == (4,)
        # each eye's share of the event's local loss: over the eyes, the rule's loss of that event
        torch.testing.assert_close(ch["layer1/loss"].sum(), seen["rule_loss"], rtol=1e-5, atol=1e-7)
        assert torch.equal(ch["gaze"], g.gaze) and torch.equal(seen["gaze"], g.gaze)
        assert torch.equal(ch["modulator"], g.modulator)
        assert torch.equal(ch["stimulus"], exp.eye.store[g.stimulus]) and ch["stimulus"].shape == (4, 1, 32, 32)
        assert ch["layer2/activity"].shape[0] == 4
    assert any(bool((s["channels"]["layer1/loss"] > 0).any()) for s in SEEN)  # pairs were found: a real loss


def test_listening_changes_nothing_of_the_run():
    """Observing draws one event at a time; the draws, and so the weights, are those of a run that does not."""
    SEEN.clear()
    listening = Experiment(config("test_listener"))
    listening.eye.policy.experiment = listening
    plain = Experiment(config("raster"))
    assert listening.eye.block_events == 1 and plain.eye.block_events > 1
    listening.simulate()
    plain.simulate()
    for a, b in zip(listening.agents, plain.agents):
        assert torch.equal(a.layer.weight, b.layer.weight)


def test_an_unknown_channel_is_a_config_error_naming_the_valid_ones(monkeypatch):
    class Bad(RasterPolicy):
        subscribes = ("layer9/loss",)

    monkeypatch.setitem(POLICIES._items, "test_bad_listener", Bad)

    with pytest.raises(ConfigError, match="unknown channel 'layer9/loss'; valid channels: layer1/activity"):
        Experiment(config("test_bad_listener"))
