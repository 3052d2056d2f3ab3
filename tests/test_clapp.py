"""CLAPP / CLAPP-s against an independent float64 transcription of the released computation
(EPFL-LCN/pub-illing2021-neurips @73671e1: vision/CLAPPVision/vision/models/ContrastiveLoss.py,
``ContrastiveLoss.forward`` + ``CLAPPHingeLoss``; VGG_like_Encoder.py, ``evaluate_loss`` with
``--asymmetric_W_pred``; the flags of vision/scripts/vision_traineval_CLAPP.sh), fed the same patches, weights
and random draws: the changes of one raster pass over the 7x7 grid sum to the gradient of the reference loss."""
import json
import math
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from agents.layers import Layer
from agents.rules.base import Factors
from agents.rules.clapp import Clapp, ClappOptions, ClappS, ClappSOptions
from saccade_sim.cli import main
from saccade_sim.config import LayerSpec, load
from saccade_sim.errors import ConfigError
from saccade_sim.events import Glimpse
from saccade_sim.experiment import Experiment
from saccade_sim.policies import GazeSpace
from conftest import data_path

GRID, PATCH, STRIDE, SKIP, K = 7, 8, 4, 1, 5  # the reference's 7x7 grid (patch/stride halved), offsets 2..6


def make_layer(pool=2, bias=True, kind="conv", channels=4, in_shape=(1, PATCH, PATCH)):
    torch.manual_seed(0)
    spec = LayerSpec(kind=kind, channels=channels, kernel=3, padding=1, pool=pool, bias=bias)
    layer = Layer(spec, in_shape, "l", channels_last=False).double()
    if bias:
        with torch.no_grad():
            layer.op.bias.uniform_(-0.3, 0.3)
    return layer


def images(b=6, seed=1):
    """Images [B, 1, H, W] cut into the reference's patch grid, unfold(2, p, s).unfold(3, p, s) -> [B, 7, 7, 1, p, p]."""
    g = torch.Generator().manual_seed(seed)
    side = PATCH + STRIDE * (GRID - 1)
    img = torch.randn(b, 1, side, side, dtype=torch.float64, generator=g)
    return img.unfold(2, PATCH, STRIDE).unfold(3, PATCH, STRIDE).permute(0, 2, 3, 1, 4, 5)


def space():
    ys = [STRIDE * i for i in range(GRID)]
    return GazeSpace(torch.tensor([(y, x) for x in ys for y in ys]), torch.tensor([STRIDE * (GRID - 1)] * 2))


# -- the reference, transcribed ------------------------------------------------------------------
def reference_encoder(layer, patches):
    """z [B, C, ny, nx]: each patch through conv + ReLU (+ MaxPool 2), then adaptive_avg_pool2d(., 1)."""
    b, ny, nx = patches.shape[:3]
    w, bias = layer.op.weight, layer.op.bias
    out = F.relu(F.conv2d(patches.reshape(b * ny * nx, *patches.shape[3:]), w, bias, padding=1))
    if layer.spec.pool > 1:
        out = F.max_pool2d(out, layer.spec.pool, layer.spec.pool)
    out = F.adaptive_avg_pool2d(out, 1).reshape(b, ny, nx, -1)
    return out.permute(0, 3, 1, 2)


def reference_hinge(z, c, w_k, rand, which):
    """ContrastiveLoss.forward with contrast_mode 'hinge', one negative sampled locally and the same everywhere:
    for k = 1..K, u = c(y, x)^T W_k z(y + k + skip, x) and the same context against the target of image rand[k];
    CLAPPHingeLoss: per-sample means over positions, then means over the samples whose which_update is
    'pos' (resp. 'neg') or 'both'; the sum over k divided by K."""
    total = 0.0
    for k in range(1, K + 1):
        off = k + SKIP
        ztwk = torch.einsum("oc,bcyx->yxbo", w_k[k - 1], z[:, :, off:, :])
        shuffled = ztwk[:, :, rand[k - 1], :]
        context = c[:, :, :-off, :].permute(2, 3, 0, 1)
        s_pos, s_neg = (context * ztwk).sum(-1), (context * shuffled).sum(-1)  # y, x, b
        l_pos = torch.where(s_pos < 1, 1 - s_pos, torch.zeros_like(s_pos)).mean((0, 1))
        l_neg = torch.where(s_neg > -1, 1 + s_neg, torch.zeros_like(s_neg)).mean((0, 1))
        loss = 0.0
        for l, side in ((l_pos, "pos"), (l_neg, "neg")):
            chosen = [i for i, w in enumerate(which) if w in (side, "both")]
            if chosen:
                loss = loss + l[chosen].mean()
        total = total + loss
    return total / K


def reference_grads(layer, patches, w1, w2, rand1, rand2, which1, which2, asymmetric=True):
    """d(loss)/d(conv weight, conv bias, W1[, W2]) of evaluate_loss: with --asymmetric_W_pred,
    loss(z, detach(c)) with W1 + loss_mirror(detach(z), c) with W2; without it, loss(z, c) with W1."""
    w1 = w1.clone().requires_grad_()
    w2 = w2.clone().requires_grad_() if asymmetric else None
    z = reference_encoder(layer, patches)
    if asymmetric:
        loss = reference_hinge(z, z.detach(), w1, rand1, which1) + reference_hinge(z.detach(), z, w2, rand2, which2)
        params = [layer.op.weight, layer.op.bias, w1, w2]
    else:
        loss = reference_hinge(z, z, w1, rand1, which1)
        params = [layer.op.weight, layer.op.bias, w1]
    return torch.autograd.grad(loss, params), float(loss.detach())


# -- ours, event by event -------------------------------------------------------------------------
def run_pass(rule, layer, patches, draws, events=None, silent_tail=0):
    """Raster over the grid (x outer, y inner), the eyes on stimuli 0..B-1 throughout; returns the summed
    .grad of (weight, bias, pred, retro) and the summed local loss. ``silent_tail`` more events with
    modulator 0 (no pairs) let deferred sums expire."""
    b = patches.shape[0]
    sums, total = None, 0.0
    params = [layer.op.weight, layer.op.bias, rule.pred] + ([rule.retro] if rule.retro is not None else [])
    cells = [(t // GRID, t % GRID) for t in range(GRID * GRID)]
    n = events if events is not None else len(cells)
    for t in range(n + silent_tail):
        col, row = cells[min(t, len(cells) - 1)]
        x = patches[:, row, col]
        m = torch.zeros(b, dtype=torch.float64) if t == 0 or t >= n else torch.ones(b, dtype=torch.float64)
        gaze = torch.tensor([[row * STRIDE, col * STRIDE]]).expand(b, 2)
        g = Glimpse(t, float(t), x, gaze, torch.arange(b), torch.zeros(b, dtype=torch.long), m, draws)
        a = layer.potential(x)
        loss = rule.update(Factors(x, a, layer.output(a), m, g))
        grads = [p.grad.clone() for p in params]
        sums = grads if sums is None else [s + q for s, q in zip(sums, grads)]
        total += float(loss)
    return sums, total


def draws_for(rand, which):
    """Glimpse.draws columns that make the rule pick partner rand[k][b] and the 'pos'/'neg' side which[b]."""
    b = len(which)
    part = torch.stack([(torch.as_tensor(r, dtype=torch.float64) + 0.5) / b for r in rand], 1)  # [B, K]
    pick = torch.tensor([[0.25 if w == "pos" else 0.75] for w in which], dtype=torch.float64)
    return torch.cat([part, pick], 1)


def make_rule(layer, cls=Clapp, b=6, **options):
    opts = (ClappSOptions if cls is ClappS else ClappOptions)(**options)
    rule = cls(layer, opts, 0, 1).double()
    rule.bind(space(), slice(0, cls.draws_needed(opts)), b)
    return rule


def rel(a, b):
    return float((a - b).norm() / b.norm().clamp_min(1e-300))


@pytest.mark.parametrize("pool", [2, 1])
@pytest.mark.parametrize("timing", ["immediate", "deferred"])
def test_clapp_pass_equals_the_released_loss_gradient(pool, timing):
    """CLAPP (asymmetric W_pred, own mirror hinge, local negatives the same everywhere, either pos or neg):
    one raster pass of 49 events, weights fixed, sums to the released per-batch gradient (<= 1e-12 relative)."""
    b = 6
    layer = make_layer(pool=pool)
    patches = images(b)
    rule = make_rule(layer, timing=timing, b=b)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        rule.pred.normal_(0, 8.0, generator=g)  # scores spread over both sides of the margins
        rule.retro.normal_(0, 8.0, generator=g)
    rand1 = [torch.randint(b, (b,), generator=g) for _ in range(K)]
    rand2 = [torch.randint(b, (b,), generator=g) for _ in range(K)]
    which1, which2 = ["pos", "neg", "neg", "pos", "pos", "neg"], ["neg", "pos", "pos", "pos", "neg", "neg"]
    draws = torch.cat([draws_for(rand1, which1), draws_for(rand2, which2)], 1)
    ours, loss = run_pass(rule, layer, patches, draws, silent_tail=rule.depth if timing == "deferred" else 0)
    ref, ref_loss = reference_grads(layer, patches, rule.pred.detach().transpose(1, 2), rule.retro.detach(),
                                    rand1, rand2, which1, which2)
    w, bias, pred, retro = ours
    assert rel(w, ref[0]) <= 1e-12 and rel(bias, ref[1]) <= 1e-12
    assert rel(pred, ref[2].transpose(1, 2)) <= 1e-12 and rel(retro, ref[3]) <= 1e-12
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    # the gates were mixed: some pairs inside the margin, some outside
    assert 0.05 < float(ref[0].norm()) and 0 < ref_loss


def test_clapp_s_pass_equals_the_hinge_gradient_with_local_negatives():
    """CLAPP-s (R = P^T, both updates): the gradient of the hinge of u = z^T P c through both z and c.
    (The released CLAPP-s script samples 16 negatives from any location of the batch: a future glimpse
    in an event stream, so saccade-sim's CLAPP-s takes its negative at the same location, as CLAPP does.)"""
    b = 6
    layer = make_layer()
    patches = images(b, seed=5)
    rule = make_rule(layer, ClappS, b=b, timing="immediate")
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        rule.pred.normal_(0, 8.0, generator=g)
    rand = [torch.randint(b, (b,), generator=g) for _ in range(K)]
    draws = draws_for(rand, ["pos"] * b)[:, :K]
    ours, _ = run_pass(rule, layer, patches, draws)
    ref, _ = reference_grads(layer, patches, rule.pred.detach().transpose(1, 2), None, rand, None,
                             ["both"] * b, None, asymmetric=False)
    assert all(rel(a, r) <= 1e-12 for a, r in zip(ours[:2], ref[:2]))
    assert rel(ours[2], ref[2].transpose(1, 2)) <= 1e-12


def test_pairs_never_cross_columns_and_follow_gaze_geometry():
    """Row r of a column pairs only with rows r - k of the same column (k in offsets, k <= r); the top rows of
    a column, where the raster's previous events are the bottom of the previous column, have no pair."""
    b = 4
    layer = make_layer()
    patches = images(b)
    rule = make_rule(layer, b=b, negatives="jump", sampling="both", retrograde="transpose", timing="immediate")
    with torch.no_grad():
        rule.pred.fill_(0.0)  # every positive pair is inside the margin: gamma = +1 for each
    seen = []
    for t in range(2 * GRID):
        col, row = t // GRID, t % GRID
        x = patches[:, row, col]
        m = torch.zeros(b, dtype=torch.float64) if t == 0 else torch.ones(b, dtype=torch.float64)
        gaze = torch.tensor([[row * STRIDE, col * STRIDE]]).expand(b, 2)
        a = layer.potential(x)
        loss = rule.update(Factors(x, a, layer.output(a), m, Glimpse(t, 0.0, x, gaze, torch.arange(b),
                                                                    torch.zeros(b, dtype=torch.long), m)))
        # with P = 0 every pair has u = 0 and hinge 1: the loss counts the pairs, weighted 1 / (N_k K)
        n_pairs = sum(1 for k in range(2, 7) if k <= row)
        expected = sum(1 / (GRID * (GRID - k) * K) for k in range(2, 7) if k <= row)
        seen.append((row, n_pairs))
        assert float(loss) == pytest.approx(expected), (t, row)
    assert [n for r, n in seen[GRID:]] == [0, 0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize("retrograde", ["own_hinge", "shared_gate", "transpose"])
def test_modulator_zero_or_a_jump_stops_pairs(retrograde):
    """A glimpse with modulator 0 (no learning signal) forms no pair; with location negatives a pair across a
    jump (modulator -1) is dropped; with jump negatives it is a negative."""
    b = 4
    layer = make_layer()
    patches = images(b)
    draws = torch.rand(b, 40, generator=torch.Generator().manual_seed(0), dtype=torch.float64)

    def losses(rule, modulators):
        out = []
        for t, m in enumerate(modulators):
            x, m = patches[:, t, 0], torch.full((b,), m, dtype=torch.float64)
            g = Glimpse(t, 0.0, x, torch.tensor([[t * STRIDE, 0]]).expand(b, 2), torch.arange(b),
                        torch.zeros(b, dtype=torch.long), m, draws[:, :Clapp.draws_needed(rule.options)])
            a = layer.potential(x)
            out.append(float(rule.update(Factors(x, a, layer.output(a), m, g))))
        return out

    for negatives, sampling in (("location", "either"), ("jump", "both")):
        def fresh():
            rule = make_rule(layer, b=b, negatives=negatives, sampling=sampling, retrograde=retrograde,
                             timing="immediate")
            with torch.no_grad():
                rule.pred.zero_()  # u = 0: every pair is inside the margin
                if rule.retro is not None:
                    rule.retro.zero_()
            return rule
        # row 2's only context is row 0, but event 2 is silent: no pair, no change
        assert losses(fresh(), [0.0, 1.0, 0.0])[2] == 0 and float(layer.op.weight.grad.abs().sum()) == 0
        # event 2 pairs with row 0 as a positive; event 3 (contexts rows 1 and 0) comes after a jump
        seq = losses(fresh(), [0.0, 1.0, 1.0, -1.0])
        assert seq[2] > 0 and (seq[3] == 0) == (negatives == "location")


def test_shared_gate_keeps_r_minus_p_transposed_fixed_under_adam():
    """The paper's rule: dR = dP^T with one gate, so under Adam (elementwise, same moments) R - P^T never changes."""
    b = 4
    layer = make_layer()
    patches = images(b)
    rule = make_rule(layer, b=b, retrograde="shared_gate", sampling="both", timing="immediate")
    opt = torch.optim.Adam([rule.pred, rule.retro], lr=0.05)
    offset = (rule.retro - rule.pred.transpose(1, 2)).detach().clone()
    start = rule.pred.detach().clone()
    draws = torch.rand(b, K, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    for t in range(GRID):
        x = patches[:, t, 0]
        m = torch.ones(b, dtype=torch.float64) * (t > 0)
        g = Glimpse(t, 0.0, x, torch.tensor([[t * STRIDE, 0]]).expand(b, 2), torch.arange(b),
                    torch.zeros(b, dtype=torch.long), m, draws)
        a = layer.potential(x)
        rule.update(Factors(x, a, layer.output(a), m, g))
        opt.step()
    assert not torch.equal(start, rule.pred)
    torch.testing.assert_close(rule.retro - rule.pred.transpose(1, 2), offset, rtol=0, atol=1e-12)


def test_bad_options_and_grids_are_named():
    with pytest.raises(ConfigError, match="rule.sampling: \"either\" needs negatives = \"location\""):
        Experiment({"rule": {"negatives": "jump"}})
    with pytest.raises(ConfigError, match="rule.offsets: the 1-point gaze grid has no two points"):
        Experiment({"data": {"source": str(data_path("digits8x8.npz"))}, "glimpse": {"patch": 8}})
    with pytest.raises(ConfigError, match="rule.window: must be 0 or >= max"):
        Experiment({"rule": {"window": 3}})


def test_engine_update_every_pass_reproduces_the_reference_adam_step():
    """The whole engine, configured as the released protocol (raster, dwell = one pass, no jumps, one
    optimiser step per pass): after one pass the weights equal one Adam step on the reference gradient."""
    cfg = {"data": {"source": str(data_path("cifar10_5k.npz")), "normalize": "standard"},
           "glimpse": {"patch": PATCH, "stride": STRIDE, "color": "gray", "random_crop": 32, "flip": True},
           "eye": {"batch": 4, "jump_prob": 0.0},
           "network": {"layers": [{"channels": 4, "pool": 2, "bias": True}], "channels_last": False},
           "rule": {"name": "clapp", "lr": 0.01, "update_every": GRID * GRID, "timing": "immediate"},
           "run": {"events": GRID * GRID, "progress": False}, "probe": {"enabled": False}}
    exp = Experiment(cfg)
    layer0 = [p.detach().clone() for p in exp.agents[0].parameters()]
    draws = []
    exp.simulation.every(1, lambda gl: draws.append(gl.draws), channel=0)
    exp.simulate()
    agent = exp.agents[0]
    # replay the eye's presentations on the reference: the glimpses each eye saw, through the initial weights
    eye = Experiment(cfg).eye
    seen = [eye.next_glimpse(0.0) for _ in range(GRID * GRID)]
    assert all(torch.equal(d, draws[0]) for d in draws)  # one presentation: the draws are held
    patches = torch.stack([torch.stack([seen[c * GRID + r].data for c in range(GRID)], 1) for r in range(GRID)], 1)
    layer = make_layer(channels=4)
    with torch.no_grad():
        layer.op.weight.copy_(layer0[0]), layer.op.bias.copy_(layer0[1])
    layer = layer.float()
    w1, w2 = layer0[2].transpose(1, 2), layer0[3]
    d = draws[0]
    rand1 = [(d[:, k] * 4).long() for k in range(K)]
    which1 = ["pos" if float(u) < 0.5 else "neg" for u in d[:, K]]
    rand2 = [(d[:, K + 1 + k] * 4).long() for k in range(K)]
    which2 = ["pos" if float(u) < 0.5 else "neg" for u in d[:, 2 * K + 1]]
    grads, _ = reference_grads(layer, patches, w1, w2, rand1, rand2, which1, which2)
    params = [p.detach().clone().requires_grad_() for p in layer0]
    for p, gr in zip(params, [grads[0], grads[1], grads[2].transpose(1, 2), grads[3]]):
        p.grad = gr.to(p.dtype)
    torch.optim.Adam(params, lr=0.01).step()
    for ours, want in zip(agent.parameters(), params):
        torch.testing.assert_close(ours.detach(), want.detach(), rtol=1e-5, atol=1e-6)


CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("source", ["cifar10_5k.npz", "mnist5k.npz"])
def test_clapp_config_runs_through_the_cli_on_any_image_source(source, tmp_path, capsys):
    out = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mnist's 28x28 digits clip the 32x32 crop (a warning)
        rc = main(["run", str(CONFIGS / "clapp.toml"), "--quiet", "--out", str(out), "--set", f"data.source={data_path(source)}",
                   "--set", "run.events=30", "--set", "probe.train=100", "--set", "probe.test=50"])
    assert rc == 0
    layers = json.loads((out / "results.json").read_text())["probe"]["layers"]
    assert list(layers) == ["layer1", "layer2", "layer3", "layer4"]


def test_full_size_config_builds_the_vgg6_encoder_with_one_step_per_pass():
    cfg = load(CONFIGS / "clapp_vgg6.toml", [f"data.source={data_path('cifar10_5k.npz')}", "glimpse.random_crop=32"])
    exp = Experiment(cfg)
    assert [layer.op.out_channels for layer in exp.layers] == [128, 256, 256, 512, 1024, 1024]
    assert all(layer.op.bias is not None for layer in exp.layers)
    assert cfg.rule.update_every == 49 and cfg.rule_options.timing == "immediate"


@pytest.mark.parametrize("timing", ["immediate", "deferred"])
@pytest.mark.parametrize("subset", [None, [0, 2]])
def test_the_step_is_pure_and_the_runtime_writes_its_rows(timing, subset):
    """Rule.step twice on the same state (full windows; the whole batch, or eyes 0 and 2 of it as asynchronous
    eyes): the same Step both times and the state untouched; Rule.update then writes the returned rows."""
    b = 4
    layer = make_layer()
    patches = images(b)
    rule = make_rule(layer, b=b, timing=timing)
    draws = torch.rand(b, 12, generator=torch.Generator().manual_seed(1), dtype=torch.float64)

    def factors(t, eyes=None):
        col, row = t // GRID, t % GRID
        ids = torch.arange(b) if eyes is None else torch.tensor(eyes)
        x = patches[ids, row, col]
        m = torch.full((len(ids),), float(t > 0), dtype=torch.float64)
        gaze = torch.tensor([[row * STRIDE, col * STRIDE]]).expand(len(ids), 2)
        g = Glimpse(t, 0.0, x, gaze, ids, torch.zeros(len(ids), dtype=torch.long), m, draws[ids],
                    None if eyes is None else ids)
        a = layer.potential(x)
        return Factors(x, a, layer.output(a), m, g)

    for t in range(rule.depth + 3):
        rule.update(factors(t))
    f = factors(rule.depth + 3, subset)
    before = {name: value.clone() for name, value in rule.state().items()}
    one, two = (rule.step(rule.weights(), rule.state(), f) for _ in range(2))
    assert all(torch.equal(value, getattr(rule, name)) for name, value in before.items())

    def same(p, q):
        if isinstance(p, torch.Tensor):
            return torch.equal(p, q)
        if isinstance(p, (tuple, list)):
            return len(p) == len(q) and all(same(a, c) for a, c in zip(p, q))
        if isinstance(p, dict) or hasattr(p, "keys"):
            return p.keys() == q.keys() and all(same(p[k], q[k]) for k in p)
        return p == q

    assert all(same(p, q) for p, q in zip(one, two))
    assert float(one.loss) > 0 and one.diagnostics["hinges"] and len(one.writes) >= 6
    rule.update(f)
    written = (rule.depth + 3) % rule.depth
    eyes = torch.arange(b) if subset is None else torch.tensor(subset)
    assert torch.equal(rule.past_x[written, eyes], f.pre)
    assert torch.equal(rule.seen[0], before["seen"][0].index_add(0, eyes, torch.ones_like(eyes)))
