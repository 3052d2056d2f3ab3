"""Activation learning (Zhou): the rule against an explicit loop, its fixed point, readout, classification
by label code, completion of hidden inputs."""
import pytest
import torch

from agents.layers import Layer
from agents.rules.activation import activation_delta, activation_score, append_label_code, classify, complete
from saccade_sim.config import LayerSpec


def make_layer(kind, in_shape, channels, kernel=3, padding=1, activation="linear", seed=0):
    torch.manual_seed(seed)
    spec = LayerSpec(kind=kind, channels=channels, kernel=kernel, padding=padding, activation=activation)
    return Layer(spec, in_shape, "l", channels_last=False).double()


def loop_delta(layer, x, y):
    """dw_ij = mean over (sample, patch) of y_j (x_i - sum_k w_ik y_k), one entry at a time."""
    w = layer.weight.detach()
    if layer.is_conv:
        patches = torch.nn.functional.unfold(x, layer.op.kernel_size, padding=layer.op.padding)
        patches = patches.transpose(1, 2).reshape(-1, w[0].numel())
        ys = y.flatten(2).transpose(1, 2).reshape(-1, w.shape[0])
    else:
        patches, ys = x.flatten(1), y
    wf = w.flatten(1)  # wf[j, i] = Zhou's w_ij
    out = torch.zeros_like(wf)
    for xp, yp in zip(patches, ys):
        for j in range(wf.shape[0]):
            for i in range(wf.shape[1]):
                out[j, i] += yp[j] * (xp[i] - sum(wf[k, i] * yp[k] for k in range(wf.shape[0])))
    return (out / len(patches)).view_as(w)


@pytest.mark.parametrize("kind,in_shape", [("dense", (6,)), ("conv", (2, 4, 4))])
def test_rule_matches_explicit_loop(kind, in_shape):
    layer = make_layer(kind, in_shape, 3)
    x = torch.randn(2, *in_shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a = layer.potential(x)
    torch.testing.assert_close(activation_delta(layer, x, a), loop_delta(layer, x, a), rtol=1e-10, atol=1e-12)


def low_rank_data(n, g, dim=10, rank=3):
    basis = torch.linalg.qr(torch.randn(dim, rank, dtype=torch.float64, generator=g))[0]
    scales = torch.tensor([3.0, 2.0, 1.5], dtype=torch.float64)[:rank]
    return (torch.randn(n, rank, dtype=torch.float64, generator=g) * scales) @ basis.T, basis


def train(layer, data, lr, epochs=1, batch=32):
    with torch.no_grad():
        for _ in range(epochs):
            for x in data.split(batch):
                layer.weight.add_(lr * activation_delta(layer, x, layer.potential(x)))


def test_rule_converges_to_an_orthonormal_basis_of_the_principal_subspace():
    g = torch.Generator().manual_seed(0)
    data, basis = low_rank_data(8000, g)
    layer = make_layer("dense", (10,), 3)
    train(layer, data, 0.01)
    w = layer.weight.detach()
    torch.testing.assert_close(w @ w.T, torch.eye(3, dtype=torch.float64), atol=0.02, rtol=0)
    projector = basis @ basis.T
    assert float((w @ projector - w).norm()) < 0.05  # rows lie in the data's subspace


def test_activation_readout_and_classification_follow_their_definitions():
    layers = [make_layer("dense", (7,), 5, activation="norm_keeping"), make_layer("dense", (5,), 4, seed=1)]
    x = torch.randn(6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    scores = torch.stack([activation_score(layers, append_label_code(x, torch.full((6,), c), 3, 2.0))
                          for c in range(3)], 1)
    for b in range(6):
        for c in range(3):
            z = torch.cat([x[b], 2.0 * torch.eye(3, dtype=torch.float64)[c]])
            y1 = layers[0](z[None])[1]
            a2 = layers[1].potential(y1)
            assert abs(float(scores[b, c]) - float((a2 ** 2).sum().detach())) < 1e-10
    assert torch.equal(classify(layers, x, 3, 2.0), scores.argmax(1))


def test_label_code_classification_learns_from_few_labelled_digits():
    from conftest import data_path
    import numpy as np

    d = np.load(data_path("digits8x8.npz"))
    x = torch.tensor(d["x"], dtype=torch.float64).flatten(1) / 16
    xt = torch.tensor(d["x_test"], dtype=torch.float64).flatten(1) / 16
    mean = x.mean(0)
    x, xt = x - mean, xt - mean
    y, yt = torch.tensor(d["y"]), torch.tensor(d["y_test"])
    layer = make_layer("dense", (74,), 20)
    g = torch.Generator().manual_seed(0)
    train(layer, append_label_code(x, y, 10, 2.0)[torch.randperm(len(x), generator=g)], 0.01, epochs=10)
    acc = float((classify([layer], xt, 10, 2.0) == yt).double().mean())
    random_acc = float((classify([make_layer("dense", (74,), 20, seed=5)], xt, 10, 2.0) == yt).double().mean())
    assert acc > 0.8 and acc > random_acc + 0.4


def test_completion_restores_hidden_entries_from_the_learned_subspace():
    g = torch.Generator().manual_seed(0)
    data, _ = low_rank_data(8000, g)
    layer = make_layer("dense", (10,), 3)
    train(layer, data, 0.01)
    test, _ = low_rank_data(200, torch.Generator().manual_seed(0))
    known = torch.ones_like(test, dtype=torch.bool)
    known[:, :3] = False
    filled = complete(layer, test, known, steps=200)
    assert torch.equal(filled[known], test[known])
    err = (filled - test)[:, :3].norm() / test[:, :3].norm()
    assert float(err) < 0.1  # zero-fill would be 1.0
