"""Hebbian rules: closed form == Miconi's loss form == an independent per-patch computation (float64)."""
import pytest
import torch

from agents.layers import Layer
from agents.rules.hebbian import KINDS, hebbian_delta, hebbian_loss
from saccade_sim.config import LayerSpec


def make_layer(kind, in_shape, channels, kernel=3, stride=1, padding=1, activation="tanh"):
    torch.manual_seed(0)
    spec = LayerSpec(kind=kind, channels=channels, kernel=kernel, stride=stride, padding=padding,
                     activation=activation)
    return Layer(spec, in_shape, "l", channels_last=False).double()


def reference_delta(kind, layer, x, y):
    """Explicit sum over every (sample, position) of y_j x_patch - decay_j w_j (decay 0, y, y^2, y u), via unfold."""
    w = layer.weight.detach()
    if layer.is_conv:
        k, s, p = layer.op.kernel_size, layer.op.stride, layer.op.padding
        patches = torch.nn.functional.unfold(x, k, padding=p, stride=s).transpose(1, 2).reshape(-1, w[0].numel())
        ys = y.flatten(2).transpose(1, 2).reshape(-1, w.shape[0])
    else:
        patches, ys = x.flatten(1), y
    wf = w.flatten(1)
    total = torch.zeros_like(wf)
    for xp, yp in zip(patches, ys):
        for j in range(wf.shape[0]):
            decay = {"hebb": 0.0, "instar": yp[j], "oja": yp[j] ** 2, "softhebb": yp[j] * (wf[j] @ xp)}[kind]
            total[j] += yp[j] * xp - decay * wf[j]
    return (total / len(patches)).view_as(w)


SHAPES = [("dense", (12,), 5, 3, 1, 0), ("dense", (2, 3, 3), 4, 3, 1, 0),
          ("conv", (3, 6, 6), 4, 3, 1, 1), ("conv", (2, 7, 5), 3, 3, 2, 0), ("conv", (1, 5, 5), 2, 5, 1, 2)]


@pytest.mark.parametrize("rule", KINDS)
@pytest.mark.parametrize("kind,in_shape,channels,kernel,stride,padding", SHAPES)
def test_loss_form_equals_closed_form(rule, kind, in_shape, channels, kernel, stride, padding):
    layer = make_layer(kind, in_shape, channels, kernel, stride, padding)
    x = torch.randn(3, *in_shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = layer(x)[1]
    closed = hebbian_delta(rule, layer, x, y, layer.potential(x))
    loss = hebbian_loss(rule, layer, x, y)
    (grad,) = torch.autograd.grad(loss, [layer.weight])
    torch.testing.assert_close(-grad, closed, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(closed, reference_delta(rule, layer, x, y), rtol=1e-10, atol=1e-12)


def test_oja_single_unit_finds_first_principal_component():
    g = torch.Generator().manual_seed(0)
    cov_root = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.7, 0.0], [0.0, 0.0, 0.3]], dtype=torch.float64)
    layer = make_layer("dense", (3,), 1, activation="linear")
    w = layer.weight
    with torch.no_grad():
        for _ in range(2000):
            x = torch.randn(16, 3, dtype=torch.float64, generator=g) @ cov_root
            w += 0.01 * hebbian_delta("oja", layer, x, layer.potential(x))
    w = layer.weight.detach().flatten()
    assert abs(w.norm() - 1) < 0.05  # Oja normalises itself
    assert abs(w[0]) > 0.99


def test_instar_converges_to_mean_input():
    layer = make_layer("dense", (4,), 1)
    target = torch.tensor([[0.5, -1.0, 2.0, 0.0]], dtype=torch.float64)
    w = layer.weight
    with torch.no_grad():
        for _ in range(3000):
            w += 0.01 * hebbian_delta("instar", layer, target, torch.ones(1, 1, dtype=torch.float64))
    torch.testing.assert_close(layer.weight.detach(), target, atol=1e-6, rtol=0)
