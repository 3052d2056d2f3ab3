"""SPHeRe: the loss against an explicit computation, the head's shape, gradients confined to layer + head."""
import torch

from agents.layers import Layer
from agents.rules.base import Factors
from agents.rules.sphere import Sphere, SphereOptions, cosine_matrix, sphere_loss
from saccade_sim.config import LayerSpec


def test_loss_matches_an_explicit_double_loop():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 2, 3, 3, dtype=torch.float64, generator=g)
    p = torch.randn(5, 4, dtype=torch.float64, generator=g)

    def cos(u, v):
        return float(u @ v / (u.norm() * v.norm()))

    xs = x.flatten(1)
    structure = sum((cos(xs[a], xs[b]) - cos(p[a], p[b])) ** 2 for a in range(5) for b in range(5)) / 25
    ortho = sum((cos(p[:, i], p[:, j]) - (i == j)) ** 2 for i in range(4) for j in range(4)) / 16
    assert abs(float(sphere_loss(x, p, 0.8)) - (structure + 0.8 * ortho)) < 1e-12
    torch.testing.assert_close(torch.diagonal(cosine_matrix(p)), torch.ones(5, dtype=torch.float64))


def test_gradient_stays_inside_the_layer_and_its_head():
    torch.manual_seed(0)
    first = Layer(LayerSpec(kind="conv", channels=4, kernel=3), (1, 6, 6), "a", channels_last=False)
    second = Layer(LayerSpec(kind="conv", channels=6, kernel=3), (4, 6, 6), "b", channels_last=False)
    rule = Sphere(second, SphereOptions(out_dim=8), 1, 2)
    image = torch.randn(4, 1, 6, 6, requires_grad=True)
    x = first(image)[1]  # NOT detached here: the rule must not send anything back anyway
    a, y = second(x.detach())
    loss = rule.update(Factors(x, a, y, torch.ones(4), None))
    assert loss.requires_grad is False and float(loss) > 0
    assert image.grad is None and all(p.grad is None for p in first.parameters())
    assert all(p.grad is not None and float(p.grad.abs().sum()) > 0
               for p in list(second.parameters()) + list(rule.head.parameters()))
    # the written gradient is d/dtheta of the loss recomputed independently
    second.zero_grad()
    (ref,) = torch.autograd.grad(sphere_loss(x.detach(), rule.head(second(x.detach())[1]), 0.8), [second.weight])
    torch.testing.assert_close(second.weight.grad if second.weight.grad is not None else ref, ref)


def test_head_is_a_small_projection_to_out_dim():
    conv = Layer(LayerSpec(kind="conv", channels=10, kernel=3), (3, 8, 8), "c", channels_last=False)
    head = Sphere(conv, SphereOptions(), 0, 1).head
    assert head[0].out_channels == 5 and isinstance(head[1], torch.nn.BatchNorm2d)
    assert head(torch.randn(4, 10, 8, 8)).shape == (4, 256)
    dense = Layer(LayerSpec(kind="dense", channels=12), (20,), "d", channels_last=False)
    assert Sphere(dense, SphereOptions(out_dim=7), 0, 1).head(torch.randn(3, 12)).shape == (3, 7)
