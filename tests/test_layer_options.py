"""Layer options the rule zoo needs: channel-centred ReLU, norm-keeping non-linearity, pruning mask; ZCA."""
import pytest
import torch

from agents.layers import Layer, PRESETS, norm_keeping, relu_centered
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
                      "glimpse": {"patch": 8}, "network": {"preset": "tiny"}})
    assert abs(float(exp.train_store.std()) - 1) < 1e-4
    with pytest.raises(ConfigError, match="data.zca_size"):
        Experiment({"data": {"source": str(data_path("digits8x8.npz")), "normalize": "zca", "zca_size": 9},
                    "glimpse": {"patch": 8}})
