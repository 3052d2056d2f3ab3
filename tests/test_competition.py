"""Competition (k-WTA with adaptive thresholds, SoftHebb soft WTA) against explicit loops (float64)."""
import math

import torch

from agents.layers import Layer
from agents.rules.competition import kwta, soft_wta, update_thresholds, winners
from agents.rules.hebbian import Instar, HebbianOptions
from saccade_sim.config import LayerSpec


def test_winners_and_kwta_match_an_explicit_sort():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(3, 6, 2, 2, dtype=torch.float64, generator=g)
    y = torch.relu(a)
    theta = torch.randn(6, dtype=torch.float64, generator=g)
    out = kwta(a, y, 2, theta)
    mask = winners(a, 2, theta)
    for b in range(3):
        for i in range(2):
            for j in range(2):
                score = [(float(a[b, c, i, j] - theta[c]), c) for c in range(6)]
                top = {c for _, c in sorted(score, reverse=True)[:2]}
                for c in range(6):
                    assert bool(mask[b, c, i, j]) == (c in top)
                    assert out[b, c, i, j] == (y[b, c, i, j] if c in top else 0.0)


def test_soft_wta_is_a_softmax_with_anti_hebbian_losers():
    a = torch.tensor([[1.0, 3.0, -0.5]], dtype=torch.float64)
    z = sum(math.exp(v / 0.5) for v in (1.0, 3.0, -0.5))
    soft = [math.exp(v / 0.5) / z for v in (1.0, 3.0, -0.5)]
    torch.testing.assert_close(soft_wta(a, 0.5, False)[0], torch.tensor(soft, dtype=torch.float64))
    torch.testing.assert_close(soft_wta(a, 0.5, True)[0],
                               torch.tensor([-soft[0], soft[1], -soft[2]], dtype=torch.float64))


def test_threshold_homeostasis_equalises_win_rates():
    g = torch.Generator().manual_seed(0)
    bias = torch.linspace(0, 3, 8, dtype=torch.float64).view(1, 8)  # unit 7 would always win
    theta = torch.zeros(8, dtype=torch.float64)
    for _ in range(3000):
        a = torch.randn(64, 8, dtype=torch.float64, generator=g) + bias
        theta = update_thresholds(theta, winners(a, 2, theta), 2, 0.05)
    a = torch.randn(20000, 8, dtype=torch.float64, generator=g) + bias
    rates = winners(a, 2, theta).double().mean(0)
    assert float((rates - 2 / 8).abs().max()) < 0.03
    assert float(winners(a, 2).double().mean(0)[-1]) > 0.6  # without thresholds: the biased unit dominates
    # the thresholds settle where the bias was
    assert float(torch.corrcoef(torch.stack([theta, bias[0]]))[0, 1]) > 0.99


def test_hebbian_rule_with_kwta_uses_and_adapts_the_layer_thresholds():
    spec = LayerSpec(kind="dense", channels=5, activation="relu")
    layer = Layer(spec, (4,), "l", channels_last=False).double()
    rule = Instar(layer, HebbianOptions(competition="kwta", k=1, threshold_rate=0.1, normalize=False), 0, 1)
    x = torch.randn(10, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    a, y = layer(x)
    expected_won = winners(a, 1, layer.threshold)
    expected_theta = update_thresholds(layer.threshold.clone(), expected_won, 1, 0.1)
    post = rule.plastic_post(a, y)
    torch.testing.assert_close(post, torch.where(expected_won, y, torch.zeros_like(y)))
    torch.testing.assert_close(layer.threshold, expected_theta)


def test_layer_kwta_transmits_only_k_winners_per_position():
    spec = LayerSpec(kind="conv", channels=8, kernel=3, kwta=2, activation="linear")
    layer = Layer(spec, (1, 6, 6), "l", channels_last=False)
    a, y = layer(torch.randn(2, 1, 6, 6))
    assert int((y != 0).sum(1).max()) <= 2
    torch.testing.assert_close(y, kwta(a, a, 2, layer.threshold))
