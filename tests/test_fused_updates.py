"""The allocation-free update paths: write_delta reuses .grad in the parameter's memory format, squared
per-unit sums and unit norms match their plain float64 definitions."""
import torch

from agents.layers import Layer
from agents.rules.base import write_delta
from agents.rules.hebbian import Oja, HebbianOptions, _per_unit
from saccade_sim.config import LayerSpec


def test_write_delta_fills_the_kept_grad_buffer_in_the_weight_layout():
    w = torch.nn.Parameter(torch.randn(4, 3, 3, 3).contiguous(memory_format=torch.channels_last))
    first, second = torch.randn(4, 3, 3, 3), torch.randn(4, 3, 3, 3)
    write_delta(w, first)
    buffer = w.grad
    assert torch.equal(w.grad, -first) and w.grad.is_contiguous(memory_format=torch.channels_last)
    write_delta(w, second)
    assert w.grad is buffer and torch.equal(w.grad, -second)


def test_squared_unit_sums_and_unit_norms_match_float64_definitions():
    y = torch.randn(5, 6, 4, 4).contiguous(memory_format=torch.channels_last)
    like = torch.zeros(6, 2, 3, 3)
    explicit = (y.double() ** 2).sum(dim=(0, 2, 3)).view(6, 1, 1, 1)
    torch.testing.assert_close(_per_unit(y, like, 2).double(), explicit, rtol=1e-5, atol=1e-6)
    layer = Layer(LayerSpec(channels=6, kernel=3), (2, 8, 8), "l", channels_last=True)
    with torch.no_grad():
        layer.op.weight.mul_(7.0)
    Oja(layer, HebbianOptions(normalize=True), 0, 1)  # normalises at construction
    norms = torch.stack([layer.weight[j].double().pow(2).sum().sqrt() for j in range(6)])
    torch.testing.assert_close(norms, torch.ones(6, dtype=torch.float64), rtol=1e-6, atol=1e-6)
    assert layer.weight.is_contiguous(memory_format=torch.channels_last)
