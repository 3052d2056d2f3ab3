"""Layer options the rule zoo needs: channel-centred ReLU, norm-keeping non-linearity, pruning mask; ZCA."""
import pytest
import torch

from agents.layers import Layer, PRESETS, calibrate, norm_keeping, relu_centered
from agents.rules.activation import activation_delta
from agents.rules.hebbian import hebbian_delta
from saccade_sim.config import LayerSpec, resolve
from saccade_sim.errors import ConfigError
from saccade_sim.whitening import fit_zca_kernel, whiten


def test_relu_centered_and_norm_keeping_match_explicit_formulas():
    a = torch.randn(4, 5, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for b in range(4):
        for i in range(3):
            v = a[b, :, i, 0]
            torch.testing.assert_close(relu_centered(a)[b, :, i, 0], torch.clamp(v - v.mean(), min=0))
            c = v.abs() - v.abs().mean()
            torch.testing.assert_close(norm_keeping(a)[b, :, i, 0], c * v.norm() / c.norm())
    assert torch.allclose(norm_keeping(a).norm(dim=1), a.norm(dim=1))


def test_pruned_connections_stay_absent_under_local_rules():
    spec = LayerSpec(kind="conv", channels=6, kernel=3, prune=0.9)
    torch.manual_seed(0)
    layer = Layer(spec, (4, 5, 5), "l", channels_last=False).double()
    mask = layer.mask.bool()
    assert 0.8 < 1 - mask.double().mean() < 0.97
    assert float(layer.weight.detach()[~mask].abs().max()) == 0.0
    x = torch.randn(3, 4, 5, 5, dtype=torch.float64)
    a, y = layer(x)
    ref = torch.nn.functional.conv2d(x, layer.weight * layer.mask, padding=1)
    torch.testing.assert_close(a, ref)
    with torch.no_grad():
        deltas = (hebbian_delta("instar", layer, x, y), activation_delta(layer, x, a))
    for delta in deltas:
        assert float(delta[~mask].abs().max()) == 0.0 and float(delta[mask].abs().max()) > 0


def test_bad_layer_options_name_the_key():
    with pytest.raises(ConfigError, match=r"network.layers\[0\].prune"):
        resolve({"network": {"layers": [{"prune": 1.0}]}})
    with pytest.raises(ConfigError, match=r"network.layers\[0\].kwta"):
        resolve({"network": {"layers": [{"kwta": -1}]}})
    with pytest.raises(ConfigError, match=r"network.layers\[0\].center: must be in \[0, 1\]"):
        resolve({"network": {"layers": [{"center": 2.0}]}})
    with pytest.raises(ConfigError, match="data.normalize"):
        resolve({"data": {"normalize": "pca"}})


def test_miconi_presets_have_the_papers_shape_and_interventions():
    for name in ("miconi", "miconi_dense", "miconi_pruned", "miconi_both"):
        specs = PRESETS[name]
        assert [(s.channels, s.kernel, s.pool, s.pool_kind) for s in specs] == \
            [(100, 5, 2, "avg"), (196, 3, 2, "avg"), (400, 3, 2, "avg")]
        dense = name in ("miconi_dense", "miconi_both")
        assert all((s.activation == "relu_centered" and s.kwta == 0) if dense else s.kwta > 0 for s in specs)
        pruned = name in ("miconi_pruned", "miconi_both")
        assert [s.prune for s in specs] == ([0.0, 0.99, 0.99] if pruned else [0.0] * 3)


def smooth_images(n, g):
    """Spatially correlated noise: white noise blurred by a 5x5 box (neighbouring pixels correlate)."""
    x = torch.randn(n, 1, 40, 40, generator=g)
    return torch.nn.functional.avg_pool2d(x, 5, stride=1)


def patch_cov(x):
    p = torch.nn.functional.unfold(x[:, :, 4:-4, 4:-4], 3).transpose(1, 2).reshape(-1, 9).double()
    return torch.corrcoef(p.T)


def test_zca_kernel_decorrelates_neighbouring_pixels():
    g = torch.Generator().manual_seed(0)
    x = smooth_images(100, g)
    before = patch_cov(x)
    kernel = fit_zca_kernel(x, 7, 1e-4, 8000, g)
    after = patch_cov(whiten(x, kernel))
    off = ~torch.eye(9, dtype=torch.bool)
    assert float(before[off].abs().max()) > 0.5
    assert float(after[off].abs().max()) < 0.1


def test_zca_whitening_option_runs_on_images_and_refuses_other_shapes():
    from conftest import data_path
    from saccade_sim.experiment import Experiment

    exp = Experiment({"data": {"source": str(data_path("digits8x8.npz")), "normalize": "zca", "zca_size": 3},
                      "glimpse": {"patch": 8}, "network": {"preset": "tiny"}, "rule": {"name": "oja"}})
    assert abs(float(exp.train_store.std()) - 1) < 1e-4
    with pytest.raises(ConfigError, match="data.zca_size"):
        Experiment({"data": {"source": str(data_path("digits8x8.npz")), "normalize": "zca", "zca_size": 9},
                    "glimpse": {"patch": 8}})


def test_center_transmits_the_deviation_from_a_running_channel_mean():
    torch.manual_seed(0)
    layer = Layer(LayerSpec(kind="conv", channels=3, kernel=3, pool=2, center=0.25), (2, 6, 6), "l",
                  channels_last=False).double()
    y = torch.rand(4, 3, 6, 6, dtype=torch.float64)
    pooled = torch.nn.functional.max_pool2d(y, 2)
    m0 = torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64)
    layer.transmit_mean.copy_(m0)
    torch.testing.assert_close(layer.transmit(y), pooled - m0.view(1, 3, 1, 1))
    assert torch.equal(layer.transmit_mean, m0)  # not adapting: the probe, frozen layers
    m1 = 0.75 * m0 + 0.25 * torch.stack([pooled[:, c].mean() for c in range(3)])
    layer.adapt(pooled)
    torch.testing.assert_close(layer.transmit(y), pooled - m1.view(1, 3, 1, 1))
    torch.testing.assert_close(layer.transmit_mean, m1)


def test_calibrate_centres_each_layers_output_on_the_sample():
    torch.manual_seed(0)
    specs = [LayerSpec(kind="conv", channels=4, kernel=3, pool=2, center=0.01),
             LayerSpec(kind="dense", channels=5, center=0.01)]
    layers = [Layer(specs[0], (1, 8, 8), "a", channels_last=False).double(),
              Layer(specs[1], (4, 4, 4), "b", channels_last=False).double()]
    x = torch.randn(16, 1, 8, 8, dtype=torch.float64)
    calibrate(layers, x)
    h = torch.nn.functional.max_pool2d(torch.relu(torch.nn.functional.conv2d(x, layers[0].weight.detach(), padding=1)), 2)
    torch.testing.assert_close(layers[0].transmit_mean, h.mean((0, 2, 3)))
    h = h - h.mean((0, 2, 3)).view(1, 4, 1, 1)
    out = torch.relu(h.flatten(1) @ layers[1].weight.detach().T)
    torch.testing.assert_close(layers[1].transmit_mean, out.mean(0))
    assert float(layers[1].transmit(out).mean(0).abs().max()) < 1e-12


def test_experiment_calibrates_the_random_baseline_and_adapts_only_the_learning_layers(tmp_path):
    from saccade_sim.experiment import Experiment
    from tests.conftest import data_path

    exp = Experiment({"data": {"source": str(data_path("mnist5k.npz")), "train_limit": 200, "test_limit": 50},
                      "eye": {"batch": 4}, "network": {"preset": "small"}, "rule": {"name": "oja"},
                      "run": {"events": 5, "progress": False}, "probe": {"enabled": False}})
    start = exp.layers[0].transmit_mean.clone()
    assert float(start.abs().min()) > 0 and torch.equal(exp.initial_layers[0].transmit_mean, start)
    exp.simulate()
    assert not torch.equal(exp.layers[0].transmit_mean, start)
    assert torch.equal(exp.initial_layers[0].transmit_mean, start)
    exp.agents[0].learning = False
    now = exp.layers[0].transmit_mean.clone()
    exp.simulate(events=3)
    assert torch.equal(exp.layers[0].transmit_mean, now)
