"""The layer options, rule options and probe the released protocols need: what each one computes, that the
defaults change nothing, and that bad values are named errors."""
import pytest
import torch
import torch.nn.functional as F

from agents.layers import PRESETS, Layer, build_layers, calibrate, triangle, triangle_prime
from agents.rules.hebbian import HebbianOptions, Instar, SoftHebb, SoftHebbOptions
from saccade_sim.analysis.probe import linear_probe
from saccade_sim.config import LayerSpec, resolve
from saccade_sim.errors import ConfigError

F64 = torch.float64


def layer(spec: LayerSpec, in_shape=(2, 6, 6)) -> Layer:
    torch.manual_seed(0)
    return Layer(spec, in_shape, "l", channels_last=False).double()


def test_input_batch_norm_uses_batch_statistics_only_while_learning():
    l = layer(LayerSpec(channels=3, input_norm="batch"))
    x = torch.randn(5, 2, 6, 6, dtype=F64) * 3 + 1
    before = (l.input_mean.clone(), l.input_var.clone())
    pre = l.prepare(x)  # probe / analysis: the running statistics (0, 1), left unchanged
    torch.testing.assert_close(pre, x / (1 + 1e-5) ** 0.5)
    assert torch.equal(l.input_mean, before[0]) and torch.equal(l.input_var, before[1])
    pre = l.prepare(x, learning=True)
    m, v = x.mean((0, 2, 3)), x.var((0, 2, 3), unbiased=False)
    torch.testing.assert_close(pre, (x - m.view(1, -1, 1, 1)) / torch.sqrt(v.view(1, -1, 1, 1) + 1e-5))
    torch.testing.assert_close(l.input_mean, 0.1 * m)
    torch.testing.assert_close(l.input_var, 0.9 + 0.1 * x.var((0, 2, 3)))


def test_calibrate_sets_the_batch_norm_statistics_of_every_layer_on_the_sample():
    torch.manual_seed(0)
    specs = [LayerSpec(channels=4, input_norm="batch", pool=2), LayerSpec(channels=3, batch_norm=True)]
    layers = [l.double() for l in build_layers(specs, (2, 8, 8), channels_last=False)]
    x = torch.randn(16, 2, 8, 8, dtype=F64) * 2 - 1
    calibrate(layers, x)
    torch.testing.assert_close(layers[0].input_mean, x.mean((0, 2, 3)))
    torch.testing.assert_close(layers[0].input_var, x.var((0, 2, 3)))
    h = layers[0].transmit(layers[0](x)[1])
    a = F.conv2d(h, layers[1].weight.detach(), padding=1)
    torch.testing.assert_close(layers[1].bn_mean, a.mean((0, 2, 3)))
    torch.testing.assert_close(layers[1].bn_var, a.var((0, 2, 3)))
    assert layers[0].momentum == 0.1  # restored after calibration


def test_image_and_unit_input_norms():
    x = torch.randn(3, 2, 4, 4, dtype=F64) * 5 + 2
    img = layer(LayerSpec(channels=2, input_norm="image"), (2, 4, 4)).prepare(x)
    for b in range(3):
        torch.testing.assert_close(img[b].mean(), torch.tensor(0.0, dtype=F64), atol=1e-12, rtol=0)
        torch.testing.assert_close(img[b].std(), torch.tensor(1.0, dtype=F64))
    unit = layer(LayerSpec(kind="dense", channels=2, input_norm="unit"), (2, 4, 4)).prepare(x)
    torch.testing.assert_close(unit.flatten(1).norm(dim=1), torch.ones(3, dtype=F64))


def test_reflect_padding_pads_the_input_the_rule_sees():
    l = layer(LayerSpec(channels=3, kernel=5, padding=2, padding_mode="reflect"), (2, 6, 6))
    x = torch.randn(2, 2, 6, 6, dtype=F64)
    pre = l.prepare(x)
    assert pre.shape == (2, 2, 10, 10) and l.op.padding == (0, 0)
    torch.testing.assert_close(pre, F.pad(x, (2, 2, 2, 2), mode="reflect"))
    torch.testing.assert_close(l(x)[0], F.conv2d(pre, l.weight.detach()))


def test_triangle_thresholds_binarize_and_overlapping_pools():
    a = torch.randn(2, 5, 4, 4, dtype=F64)
    d = a - a.mean(1, keepdim=True)
    torch.testing.assert_close(triangle(a, 1.4), torch.clamp(d, min=0) ** 1.4)
    torch.testing.assert_close(triangle_prime(a, 1.4), 1.4 * torch.clamp(d, min=0) ** 0.4 * (d > 0))
    l = layer(LayerSpec(channels=4, activation="linear", thresholded=True, kwta=2, binarize=True, pool=4,
                        pool_stride=2, pool_padding=1), (2, 8, 8))
    l.threshold.copy_(torch.tensor([0.5, -0.5, 2.0, 0.0], dtype=F64))
    x = torch.randn(3, 2, 8, 8, dtype=F64)
    a, y = l(x)
    drive = a - l.threshold.view(1, -1, 1, 1)
    top2 = drive >= drive.topk(2, dim=1).values[:, -1:]
    torch.testing.assert_close(y, (top2 & (drive > 0)).to(F64))
    torch.testing.assert_close(l.pool(y), F.max_pool2d(y, 4, 2, 1))
    assert l.out_shape == (4, 4, 4)


def test_initialisations():
    n = layer(LayerSpec(channels=400, kernel=5, init="normal", init_norm=25.0), (3, 8, 8)).weight.detach()
    norms = n.flatten(1).norm(dim=1)
    assert abs(float(norms.mean()) - 25) < 0.5 and float(norms.std()) > 0.5  # N(0, 25^2 / 75): norms spread
    u = layer(LayerSpec(channels=6, init="normal_unit", prune=0.5), (3, 8, 8))
    torch.testing.assert_close(u.weight.detach().flatten(1).norm(dim=1), torch.ones(6, dtype=F64))
    assert float(u.weight.detach()[u.mask == 0].abs().max()) == 0.0


def test_new_defaults_reproduce_the_old_layer():
    """Every new LayerSpec field at its default: the layer is conv + rho + pool, as before."""
    l = layer(LayerSpec(channels=3, pool=2, activation="leaky_relu"))
    x = torch.randn(2, 2, 6, 6, dtype=F64)
    assert l.prepare(x) is x
    a, y = l(x)
    torch.testing.assert_close(a, F.conv2d(x, l.weight.detach(), padding=1), rtol=0, atol=0)
    torch.testing.assert_close(l.transmit(y), F.max_pool2d(F.leaky_relu(a, 0.01), 2), rtol=0, atol=0)


@pytest.mark.parametrize("key,value,match", [
    ("input_norm", "layer", "input_norm: unknown value"), ("padding_mode", "circular", "padding_mode"),
    ("init", "xavier", "init: unknown value"), ("pool_padding", 3, "pool_padding: must be at most half"),
    ("power", 0.0, "power: must be > 0"), ("pool_stride", -1, "pool_stride: must be >= 0")])
def test_bad_layer_options_name_the_key(key, value, match):
    with pytest.raises(ConfigError, match=rf"network.layers\[0\]\.{match}"):
        resolve({"network": {"layers": [{"pool": 4, key: value}]}})


def test_bad_rule_and_probe_options_name_the_key():
    with pytest.raises(ConfigError, match=r"rule.kwta_post: unknown value 'winner'"):
        resolve({"rule": {"name": "instar", "kwta_post": "winner"}})
    with pytest.raises(ConfigError, match=r"rule.layers\[1\].scale"):
        resolve({"rule": {"name": "softhebb", "layers": [{}, {"scale": "l2"}]}})
    with pytest.raises(ConfigError, match="probe.classifier"):
        resolve({"probe": {"classifier": "svm"}})
    with pytest.raises(ConfigError, match="residual"):
        Layer(LayerSpec(channels=2, residual=True), (4, 6, 6), "l")


def test_softhebb_rule_defaults_are_the_released_update():
    cfg = resolve({"rule": {"name": "softhebb"}})
    o = cfg.rule_options
    assert (o.competition, o.anti_hebbian, o.normalize, o.scale, o.lr_power) == ("soft", True, False, "max", 0.5)
    assert (cfg.rule.optimizer, cfg.rule.lr) == ("sgd", 0.08)
    l = layer(PRESETS["softhebb"][0].__class__(**{**PRESETS["softhebb"][0].__dict__, "channels": 4}), (3, 8, 8))
    w0 = l.weight.detach().clone()
    SoftHebb(l, SoftHebbOptions(), 0, 1)
    assert torch.equal(l.weight.detach(), w0)  # no renormalisation at the start (nor after steps)


def test_supra_threshold_homeostasis_counts_only_winners_above_threshold():
    l = layer(LayerSpec(kind="dense", channels=4, activation="linear"), (3,))
    l.threshold.copy_(torch.tensor([10.0, 0.0, 0.0, 0.0], dtype=F64))
    x = torch.randn(20, 3, dtype=F64)
    a = l.potential(x)
    rule = Instar(l, HebbianOptions(competition="kwta", k=1, threshold_rate=1.0, homeostasis="supra",
                                    kwta_post="potential", normalize=False), 0, 1)
    drive = a - torch.tensor([10.0, 0.0, 0.0, 0.0], dtype=F64)
    won = drive == drive.max(1, keepdim=True).values
    post = rule.plastic_post(a, a)
    torch.testing.assert_close(post, torch.where(won, drive, torch.zeros_like(a)))
    fired = (won & (drive > 0)).double().mean(0)
    torch.testing.assert_close(l.threshold, torch.tensor([10.0, 0, 0, 0], dtype=F64) + fired - 0.25)


def test_linear_readout_learns_a_linear_rule_and_not_noise():
    """On 3000 items (47 steps an epoch; the released readout sees 782 an epoch): 10 epochs at lr 1e-2."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3400, 20, generator=g, dtype=F64)
    w = torch.randn(20, 4, generator=g, dtype=F64)
    y = (x @ w).argmax(1)
    good = linear_probe(x[:3000], y[:3000], x[3000:], y[3000:], epochs=10, seed=1, lr=1e-2)["accuracy"]
    noise = linear_probe(x[:3000], torch.randint(4, (3000,), generator=g), x[3000:], y[3000:], 10, 1, lr=1e-2)
    assert good > 0.8 and noise["accuracy"] < 0.4
    assert linear_probe(x[:3000], y[:3000], x[3000:], y[3000:], epochs=10, seed=1, lr=1e-2)["accuracy"] == good


def test_primal_ridge_is_the_kernel_ridge():
    """solver = "auto" with fewer features than items: the same penalty, leave-one-out and test accuracy."""
    from saccade_sim.analysis.probe import ridge_probe

    g = torch.Generator().manual_seed(0)
    x = torch.randn(700, 60, generator=g, dtype=F64)
    y = (x @ torch.randn(60, 5, generator=g, dtype=F64) + 4 * torch.randn(700, 5, generator=g, dtype=F64)).argmax(1)
    kernel = ridge_probe(x[:500], y[:500], x[500:], y[500:])
    primal = ridge_probe(x[:500], y[:500], x[500:], y[500:], solver="auto")
    assert kernel == primal and 0.3 < kernel["accuracy"] < 0.95


def test_softhebb_loss_form_takes_the_same_step_as_the_closed_form():
    """form = "loss" (Miconi's surrogate with graph u - u |w|^2 / 2) rescaled like the closed form."""
    from agents.agent import LayerAgent, make_optimizer
    from saccade_sim.events import Glimpse

    x = torch.randn(3, 2, 6, 6, dtype=F64, generator=torch.Generator().manual_seed(4))
    g = Glimpse(index=0, time=0.0, data=x, gaze=torch.zeros(3, 2), stimulus=torch.arange(3),
                label=torch.zeros(3, dtype=torch.long), modulator=torch.ones(3))
    weights = []
    for form in ("closed", "loss"):
        l = layer(LayerSpec(channels=4, init="normal", init_norm=25.0, activation="triangle"))
        rule = SoftHebb(l, SoftHebbOptions(form=form), 0, 1)
        LayerAgent("l", l, rule, make_optimizer(list(l.parameters()), "sgd", 0.08, 0.0)).step(g)
        weights.append(l.weight.detach())
    torch.testing.assert_close(weights[0], weights[1], rtol=1e-12, atol=0)
    start = layer(LayerSpec(channels=4, init="normal", init_norm=25.0)).weight.detach()
    assert float((weights[0] - start).abs().max()) > 0.01
