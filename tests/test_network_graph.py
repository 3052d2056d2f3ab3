"""The network's feedforward graph (``[[network.edges]] kind = "feedforward"``): skip connections and merging
streams joined by channel concatenation, the chain as the default, the checks of bad graphs, and resume."""
import json

import pytest
import torch

from agents.layers import build_layers
from conftest import data_path, run_and_resumed_run
from saccade_sim.analysis.probe import grid_features
from saccade_sim.checkpoint import check_checkpointable
from saccade_sim.cli import main
from saccade_sim.errors import ConfigError
from saccade_sim.experiment import Experiment
from saccade_sim.specs import LayerSpec
from saccade_sim.wiring import Edge, cycle, latency, sinks


def ff(source: str, target: str, delay_ms: float = 0.0) -> dict:
    return {"source": source, "target": target, "kind": "feedforward", "delay_ms": delay_ms}


#: layer2 sees layer1's output and, through a skip connection, the eye's glimpse (same 4x4 size: no pooling)
SKIP = [ff("eye", "layer1"), ff("layer1", "layer2", 10.0), ff("eye", "layer2", 4.0)]


def config(edges=(), layers=None, events: int = 6, **extra) -> dict:
    return {"data": {"source": str(data_path("digits8x8.npz")), "train_limit": 200, "test_limit": 60},
            "glimpse": {"patch": 4, "stride": 2}, "eye": {"batch": 4, "policy": "random"},
            "network": {"layers": layers or [{"channels": 3}, {"channels": 5, "pool": 2}], "edges": list(edges)},
            "rule": {"name": "oja", "lr": 0.05}, "run": {"events": events, "check_every": 2, "progress": False},
            "probe": {"train": 40, "test": 20}, **extra}


def test_a_skip_connection_concatenates_the_glimpse_and_layer1_per_event():
    exp = Experiment(config(SKIP))
    assert [layer.in_shape for layer in exp.layers] == [(1, 4, 4), (4, 4, 4)]  # layer2: 3 + 1 channels
    eye, first, second = [], [], []
    exp.simulation.every(1, eye.append, channel=0)
    exp.simulation.every(1, first.append, channel=1)
    agent = exp.agents[1]
    step = agent.step
    agent.step = lambda g: (second.append((g, exp.simulation.env.now)), step(g))[1]
    exp.simulate()
    assert len(second) == len(eye) == 6
    for e, one, (two, now) in zip(eye, first, second):
        assert two.index == e.index == one.index
        assert torch.equal(two.data, torch.cat([one.data, e.data], 1))  # in the order the edges are declared
        assert now == e.time + 10.0  # once the later input (10 ms) has arrived


def test_the_probe_runs_every_area_on_its_gathered_input():
    specs = [LayerSpec(channels=3), LayerSpec(channels=2, pool=2)]
    layers = build_layers(specs, (1, 4, 4), channels_last=False, seed=0,
                          inputs=[[(0, "a")], [(1, "b"), (0, "c")]])
    exp = Experiment(config(SKIP))
    idx = torch.arange(5)
    feats = grid_features(layers, exp.modality, exp.train_store, idx, pool=4, batch=3)  # pool 4: none
    x = exp.modality.grid_glimpses(exp.train_store, idx)
    y1 = layers[0].pool(layers[0](x)[1])
    y2 = layers[1].pool(layers[1](torch.cat([y1, x], 1))[1])
    n = len(idx)
    for got, want in zip(feats, (x, y1, y2)):
        torch.testing.assert_close(got, want.reshape(n, -1).double(), rtol=0, atol=0)


def test_the_chain_is_the_default_and_declaring_it_changes_nothing():
    chained = Experiment(config(layers=[{"channels": 3, "delay_ms": 5.0}, {"channels": 5, "pool": 2}]))
    declared = Experiment(config([ff("eye", "layer1", 5.0), ff("layer1", "layer2")]))
    assert [(e.source, e.target, e.delay_ms) for e in chained.edges] == [("eye", "layer1", 5.0),
                                                                           ("layer1", "layer2", 0.0)]
    assert chained.simulation.output is chained.simulation.channels[-1]
    ra, rb = chained.run(), declared.run()
    for a, b in zip(chained.agents, declared.agents):
        assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert ra["probe"] == rb["probe"] and chained.history == declared.history


def test_two_streams_merge_and_the_network_output_waits_for_every_sink():
    layers = [{"channels": 3}, {"channels": 2}, {"channels": 4, "pool": 2}, {"channels": 2}]
    # eye -> layer1, eye -> layer2; layer1 + layer2 -> layer3 (a sink); layer1 -> layer4 (a sink, 30 ms later)
    edges = [ff("eye", "layer1"), ff("eye", "layer2"), ff("layer1", "layer3"), ff("layer2", "layer3"),
             ff("layer1", "layer4", 30.0)]
    exp = Experiment(config(edges, layers))
    assert exp.layers[2].in_shape == (5, 4, 4) and sinks(exp.edges, [a.name for a in exp.agents]) == ["layer3",
                                                                                                        "layer4"]
    done, last = [], []
    exp.simulation.every(1, lambda g: done.append((g.index, exp.simulation.env.now, g.time)))
    exp.simulation.every(1, last.append, channel=4)
    results = exp.run()
    assert [(i, now - t) for i, now, t in done] == [(i, 30.0) for i in range(6)]  # after layer4, the slower sink
    assert [g.index for g in last] == list(range(6))
    assert set(results["probe"]["layers"]) == {"layer1", "layer2", "layer3", "layer4"}  # every area is probed
    assert len(exp.history) == 3


def test_a_graph_with_a_dendritic_edge_resumes_bit_identically(tmp_path):
    cfg = config(SKIP + [{"source": "layer2", "target": "layer1", "kind": "topdown", "delay_ms": 3.0}], events=9,
                 rule={"name": "urbanczik_senn", "lr": 0.5})
    reference, resumed = run_and_resumed_run(cfg, 4, tmp_path)
    assert reference.history == resumed.history
    assert torch.equal(reference.agents[0].dendritic_inputs["layer2"], resumed.agents[0].dendritic_inputs["layer2"])


def test_a_skip_connection_config_runs_from_toml(tmp_path, capsys):
    edges = "".join(f'[[network.edges]]\nsource = "{e["source"]}"\ntarget = "{e["target"]}"\n'
                    f'kind = "feedforward"\ndelay_ms = {e["delay_ms"]}\n\n' for e in SKIP)
    toml = (f'[data]\nsource = "{data_path("digits8x8.npz")}"\ntrain_limit = 200\ntest_limit = 60\n\n'
            '[glimpse]\npatch = 4\nstride = 2\n\n[[network.layers]]\nchannels = 3\n\n'
            f'[[network.layers]]\nchannels = 5\npool = 2\n\n{edges}[rule]\nname = "oja"\n\n'
            '[run]\nevents = 4\n\n[probe]\ntrain = 40\ntest = 20\n')
    (tmp_path / "skip.toml").write_text(toml)
    assert main(["run", str(tmp_path / "skip.toml"), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["events"] == 4 and set(results["probe"]["layers"]) == {"layer1", "layer2"}
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["network"]["edges"]
    assert [(e["source"], e["target"], e["kind"]) for e in saved] == [(e["source"], e["target"], "feedforward")
                                                                       for e in SKIP]


@pytest.mark.parametrize("edges, layers, message", [
    ([ff("eye", "layer1"), ff("layer1", "layer2"), ff("layer2", "layer1")], None,
     r"network.edges\[1\]: the feedforward edges form a cycle layer1 -> layer2 -> layer1"),
    ([ff("eye", "layer1"), ff("layer1", "layer1"), ff("layer1", "layer2")], None,
     r"network.edges\[1\]: the feedforward edges form a cycle layer1 -> layer1"),
    ([ff("eye", "layer1"), ff("eye", "layer2"), ff("layer2", "layer1")], None,
     r"network.edges\[2\]: layer2 feeds layer1, which comes before it in network.layers"),
    ([ff("eye", "layer1"), ff("layer1", "layer2"), ff("eye", "layer2")], [{"channels": 3, "pool": 2}, {}],
     r"network.edges\[2\]: its source's output of shape \[1, 4, 4\] cannot be concatenated along the channels "
     r"with network.layers\[1\]'s first input of shape \[3, 2, 2\]"),
    ([ff("eye", "layer1")], None, "network.edges: area layer2 has no feedforward input"),
    ([ff("eye", "layer1"), ff("layer1", "layer2"), ff("layer1", "layer2")], None,
     r"network.edges\[2\]: a second feedforward edge layer1 -> layer2"),
    ([ff("eye", "layer1"), ff("retina", "layer2")], None,
     r"network.edges\[1\].source: unknown source 'retina'; valid choices: eye, layer1, layer2"),
    ([ff("eye", "layer1"), ff("layer1", "layer2")], [{"channels": 3, "delay_ms": 5.0}, {}],
     r"network.layers\[0\].delay_ms: the feedforward edges are declared in network.edges"),
])
def test_bad_feedforward_graphs_are_config_errors(edges, layers, message):
    with pytest.raises(ConfigError, match=message):
        Experiment(config(edges, layers))


def test_cycle_finds_the_loop_and_nothing_in_a_graph_without_one():
    a, b, c, d = (Edge("eye", "l1", "feedforward"), Edge("l1", "l2", "feedforward"), Edge("l2", "l3", "feedforward"),
                  Edge("l3", "l1", "feedforward"))
    assert cycle([a, b, c, d]) == [b, c, d]
    assert cycle([a, b, c, Edge("l1", "l3", "feedforward")]) == []


def test_the_latency_is_the_longest_feedforward_path_and_bounds_checkpoints():
    chain = [Edge("eye", "l1", "feedforward", 30.0), Edge("l1", "l2", "feedforward", 20.0)]
    assert latency(chain) == 50.0  # the chain: the sum of the layers' delays
    skip = [Edge("eye", "l1", "feedforward", 0.0), Edge("l1", "l2", "feedforward", 10.0),
            Edge("eye", "l2", "feedforward", 40.0), Edge("l2", "l1", "topdown", 99.0)]
    assert latency(skip) == 40.0  # the skip edge is the slower path to l2; dendritic edges do not count
    fixation = 200.0  # the default eye.fixation_ms
    slow = [ff("eye", "layer1", 150.0), ff("layer1", "layer2", 60.0)]
    with pytest.raises(ConfigError, match=r"run.checkpoint_every: .* \(210 ms\)"):
        check_checkpointable(Experiment(config(slow, run={"events": 6, "checkpoint_every": 2, "progress": False})))
    check_checkpointable(Experiment(config([ff("eye", "layer1", fixation / 2), ff("layer1", "layer2")],
                                           run={"events": 6, "checkpoint_every": 2, "progress": False})))
