"""The network graph's dendritic edges and Urbanczik & Senn's rule (dendritic prediction of somatic activity)."""
import math

import numpy as np
import pytest
import torch

from agents.agent import LayerAgent
from agents.dendrites import DendriticEdge
from agents.layers import Layer
from agents.rules.base import Factors
from agents.rules.dendritic import UrbanczikSenn, UrbanczikSennOptions
from conftest import data_path
from saccade_sim.errors import ConfigError
from saccade_sim.experiment import Experiment
from saccade_sim.specs import LayerSpec


def test_urbanczik_senn_update_matches_an_independent_float64_computation():
    g = torch.Generator().manual_seed(0)
    layer = Layer(LayerSpec(kind="conv", channels=3, kernel=3), (2, 5, 5), "l", channels_last=False)
    opts = UrbanczikSennOptions(g_l=0.1, g_d=2.0, phi_max=1.5, k=0.5, beta=2.0, theta=0.3)
    rule = UrbanczikSenn(layer, opts, 0, 2)
    edge = DendriticEdge("layer2", 4, 3, 1.0, conv_target=True)
    rule.edges = {"layer2": edge}
    x = torch.randn(6, 2, 5, 5, generator=g)
    a, y = layer(x)
    r = torch.randn(6, 4, 2, 2, generator=g)  # layer2's output
    z = edge.psp(r)
    loss = rule.update(Factors(x, a.detach(), y.detach(), torch.ones(6), None, edge(z).detach(), {"layer2": z}))

    # independently, in float64 with numpy: phi(u) = phi_max / (1 + k exp(beta (theta - u)))
    phi = lambda u: 1.5 / (1 + 0.5 * np.exp(2.0 * (0.3 - u)))
    u = a.detach().double().numpy()  # [B, C, H, W]
    zz = r.double().numpy().reshape(6, 4, -1).mean(2)  # [B, C_s]
    v = zz @ edge.weight.detach().double().numpy().T  # [B, C]
    err = phi(u) - phi(2.0 / 2.1 * v)[:, :, None, None]
    expected = np.einsum("bc,bs->cs", err.reshape(6, 3, -1).mean(2), zz) / 6
    np.testing.assert_allclose(-edge.weight.grad.double().numpy(), expected, rtol=1e-5, atol=1e-7)
    assert float(layer.weight.grad.abs().max()) == 0.0  # the feedforward weights do not learn
    np.testing.assert_allclose(float(loss), 0.5 * np.mean(err ** 2), rtol=1e-5)
    np.testing.assert_allclose(rule.eye_loss().sum().item(), float(loss), rtol=1e-5)


def config(**network) -> dict:
    return {"data": {"source": str(data_path("cifar10_5k.npz")), "train_limit": 64, "test_limit": 16},
            "glimpse": {"patch": 8, "stride": 4, "color": "gray"}, "eye": {"batch": 4},
            "network": {"layers": [{"channels": 4, "pool": 2}, {"channels": 6, "pool": 2}], **network},
            "rule": {"name": "urbanczik_senn", "lr": 1.0}, "run": {"events": 6, "progress": False},
            "probe": {"enabled": False}}


def test_a_topdown_edge_delivers_the_higher_areas_last_output_and_its_weights_learn():
    exp = Experiment(config(edges=[{"source": "layer2", "target": "layer1", "kind": "topdown", "delay_ms": 5.0}]))
    top = []
    exp.simulation.every(1, top.append)  # layer2's outputs
    w0 = exp.agents[0].dendrites[0].weight.detach().clone()
    exp.simulate()
    agent = exp.agents[0]
    assert [e.kind for e in exp.edges] == ["feedforward", "feedforward", "topdown"]
    assert torch.equal(agent.dendritic_inputs["layer2"], top[-1].data)
    assert not torch.equal(agent.dendrites[0].weight, w0)
    assert exp.agents[1].dendrites == [] and float(exp.agents[1].layer.weight.grad.abs().max()) == 0.0


def test_edges_are_checked():
    with pytest.raises(ConfigError, match=r"network.edges\[0\]: a top-down edge comes from a higher area"):
        Experiment(config(edges=[{"source": "layer1", "target": "layer2", "kind": "topdown"}]))
    with pytest.raises(ConfigError, match=r"network.edges\[0\].source: unknown area 'layer7'"):
        Experiment(config(edges=[{"source": "layer7", "target": "layer1"}]))
