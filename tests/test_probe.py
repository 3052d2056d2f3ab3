"""The ridge probe: exact leave-one-out selection vs explicit refits, and sanity on known problems."""
import pytest
import torch
import torch.nn.functional as F

from saccade_sim.analysis.probe import ridge_probe


def explicit_loo_accuracy(x, y, lam):
    """Refit without each item in turn (float64, standardised with the full training statistics)."""
    x = (x - x.mean(0)) / x.std(0)
    y1 = F.one_hot(y).double()
    k = x @ x.T
    scale = torch.linalg.eigvalsh(k).clamp_min(0).mean()
    hits = 0
    for i in range(len(y)):
        keep = torch.arange(len(y)) != i
        ym = y1.mean(0)  # as the probe does: targets centred (and features standardised) on all items
        xk, yk = x[keep], y1[keep] - ym
        alpha = torch.linalg.solve(xk @ xk.T + lam * scale * torch.eye(len(yk), dtype=x.dtype), yk)
        score = x[i] @ xk.T @ alpha + ym
        hits += int(score.argmax() == y[i])
    return hits / len(y)


def test_leave_one_out_matches_explicit_refits():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 7, dtype=torch.float64, generator=g)
    y = torch.randint(0, 3, (40,), generator=g)
    x[:, 0] += y.double()
    for lam in (0.01, 1.0):
        lambdas = torch.tensor([lam], dtype=torch.float64)
        got = ridge_probe(x, y, x, y, lambdas=lambdas)["loo_accuracy"]
        assert abs(got - explicit_loo_accuracy(x, y, lam)) < 1e-12


def test_separable_classes_are_decoded_and_noise_is_not():
    g = torch.Generator().manual_seed(1)
    y = torch.arange(300) % 5
    centres = torch.randn(5, 20, generator=g) * 3
    x = centres[y] + torch.randn(300, 20, generator=g) * 0.3
    assert ridge_probe(x[:200], y[:200], x[200:], y[200:])["accuracy"] == 1.0
    noise = torch.randn(300, 20, generator=g)
    assert ridge_probe(noise[:200], y[:200], noise[200:], y[200:])["accuracy"] < 0.4


def test_penalty_choice_holds_with_many_more_features_than_items():
    """Raw CIFAR pixels (3072 features, 600 items): the chosen penalty scores within 0.02 of the best one."""
    import numpy as np

    from conftest import data_path
    from saccade_sim.analysis.probe import LAMBDAS

    d = np.load(data_path("cifar10_5k.npz"))
    x, y = torch.from_numpy(d["x"][:600].reshape(600, -1)).double(), torch.from_numpy(d["y"][:600])
    xt, yt = torch.from_numpy(d["x_test"][:500].reshape(500, -1)).double(), torch.from_numpy(d["y_test"][:500])
    chosen = ridge_probe(x, y, xt, yt)["accuracy"]
    best = max(ridge_probe(x, y, xt, yt, lambdas=lam.view(1))["accuracy"] for lam in LAMBDAS)
    assert chosen > 0.25 and chosen >= best - 0.02


def test_float32_features_hold_the_float64_values_and_the_probe_leaves_its_inputs_alone():
    """The experiment keeps probe features in float32 (half the memory): the layers compute in float32, so
    the values are those of float64 features, and the ridge fit (float64 inside) gives the same result."""
    from conftest import data_path
    from saccade_sim.analysis.probe import grid_features
    from saccade_sim.experiment import Experiment

    exp = Experiment({"data": {"source": str(data_path("mnist5k.npz")), "train_limit": 60, "test_limit": 30},
                      "network": {"preset": "small"}, "run": {"progress": False}, "probe": {"enabled": False}})
    idx = torch.arange(50)
    f64 = grid_features(exp.layers, exp.modality, exp.train_store, idx, batch=16)
    f32 = grid_features(exp.layers, exp.modality, exp.train_store, idx, batch=7, dtype=torch.float32)
    assert [f.dtype for f in f32] == [torch.float32] * 3 and all(torch.equal(a.double(), b) for a, b in zip(f32, f64))
    y = exp.train_labels[idx].cpu()
    kept = f32[1].clone()
    assert ridge_probe(f32[1][:30], y[:30], f32[1][30:], y[30:]) == ridge_probe(f64[1][:30], y[:30], f64[1][30:], y[30:])
    assert torch.equal(f32[1], kept)


def test_gram_matrices_summed_over_feature_blocks_equal_the_standardised_products():
    """K = Z Z^T and K_test = Z_test Z^T with training statistics, whatever the block of feature columns."""
    from saccade_sim.analysis.probe import standardized_grams

    g = torch.Generator().manual_seed(2)
    x, xt = torch.randn(30, 11, generator=g) * 3 + 1, torch.randn(8, 11, generator=g)
    mean, std = x.double().mean(0), x.double().std(0)
    z, zt = (x.double() - mean) / std, (xt.double() - mean) / std
    for block in (1, 4, 11, 64):
        k, kt = standardized_grams(x, xt, block)
        assert k.dtype == kt.dtype == torch.float64
        torch.testing.assert_close(k, z @ z.T, rtol=1e-12, atol=1e-10)
        torch.testing.assert_close(kt, zt @ z.T, rtol=1e-12, atol=1e-10)


def test_the_label_curve_is_the_probe_trained_on_each_number_of_labels():
    """label_curve(n) = the probe with probe.train = n, on nested training sets, the test split unchanged."""
    from conftest import data_path
    from saccade_sim.errors import ConfigError
    from saccade_sim.experiment import Experiment

    exp = Experiment({"data": {"source": str(data_path("digits8x8.npz"))}, "glimpse": {"patch": 4},
                      "network": {"preset": "tiny"}, "rule": {"name": "oja"}, "run": {"events": 5, "progress": False},
                      "probe": {"train": 0, "test": 50}})
    exp.simulate()
    curve = exp.label_curve(exp.layers, [80, 20, 200])
    assert list(curve) == [20, 80, 200]
    for n, scores in curve.items():
        exp.config.probe.train = n
        assert scores == exp.probe_scores(exp.layers, with_input=False)
    small = set(exp.probe_indices(len(exp.train_labels), 20, "train").tolist())
    assert small <= set(exp.probe_indices(len(exp.train_labels), 80, "train").tolist())
    for sizes in ([0, 10], [len(exp.train_labels) + 1], []):
        with pytest.raises(ConfigError):
            exp.label_curve(exp.layers, sizes)
