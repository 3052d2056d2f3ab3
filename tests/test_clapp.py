"""CLAPP / CLAPP-s: explicit three-factor formula == loss gradient == an independent per-pair computation
(float64), the modulator's role (0: nothing learns; sign flip: update flips), pairing, and the engine."""
import dataclasses

import pytest
import torch
import torch.nn.functional as F

from agents.layers import Layer
from agents.rules.base import Factors
from agents.rules.clapp import (Clapp, ClappOptions, ClappS, clapp_delta, clapp_loss, gate,
                                make_pairs, pair_signs, pooled)
from saccade_sim.config import LayerSpec
from saccade_sim.experiment import Experiment
from tests.conftest import data_path

SHAPES = [("dense", (2, 3, 3), 5), ("conv", (3, 6, 6), 4), ("conv", (2, 3, 4), 3)]  # 12 positions: the unfold path


def make_layer(kind, in_shape, channels, activation="relu"):
    torch.manual_seed(0)
    spec = LayerSpec(kind=kind, channels=channels, kernel=3, stride=1, padding=1, activation=activation)
    return Layer(spec, in_shape, "l", channels_last=False).double()


def problem(kind, in_shape, channels, k=3, b=4, scale=10.0, seed=1):
    """A layer, current and context inputs, P and R, and pairs with labels +1, -1 and 0."""
    g = torch.Generator().manual_seed(seed)
    layer = make_layer(kind, in_shape, channels)
    x = torch.randn(b, *in_shape, dtype=torch.float64, generator=g)
    ctx_x = torch.randn(k, b, *in_shape, dtype=torch.float64, generator=g)
    with torch.no_grad():
        a, ctx_a = layer.potential(x), layer.potential(ctx_x.flatten(0, 1)).view(k, b, *layer.post_shape)
    pred = scale * torch.randn(k, channels, channels, dtype=torch.float64, generator=g)
    retro = scale * torch.randn(k, channels, channels, dtype=torch.float64, generator=g)
    signs = torch.tensor([1.0, -1.0, 0.0, 1.0], dtype=torch.float64)[torch.arange(k * b) % 4].view(k, b)
    stim_now, stim_ctx = torch.arange(b), torch.arange(b).expand(k, b).clone()
    stim_ctx[0, 0] = 1  # eye 1 sees the context's stimulus: no negative for this context
    pairs = make_pairs(signs, "batch", 1, stim_now, stim_ctx)
    return layer, x, a, ctx_x, ctx_a, pred, retro, pairs


def reference_delta(layer, x, ctx_x, pred, retro, pairs, margin):
    """Per pair, with unfolded patches: dW_j += gamma [(P c)_j mean_pos rho'(a_j) x + (R z)_j mean_pos rho'(a_j^c) x^c]."""
    w = layer.weight.detach()

    def patches_and_slopes(inp):  # [positions, patch], [positions, C] for one glimpse
        if layer.is_conv:
            p = F.unfold(inp[None], 3, padding=1)[0].T
        else:
            p = inp.flatten()[None]
        a = p @ w.flatten(1).T
        return p, F.relu(a).mean(0), (a > 0).double()

    d_w, d_p = torch.zeros_like(w.flatten(1)), torch.zeros_like(pred)
    k_n, p_n = pairs.y.shape
    b = x.shape[0]
    for k in range(k_n):
        for p in range(p_n):
            t, c, y = int(pairs.target[k, p]), int(pairs.context[k, p]), float(pairs.y[k, p])
            px, z, sx = patches_and_slopes(x[t])
            pc, cv, sc = patches_and_slopes(ctx_x[k, c])
            u = float(z @ pred[k] @ cv)
            gamma = y * (y * u < margin)
            d_p[k] += gamma * torch.outer(z, cv)
            fwd, back = pred[k] @ cv, retro[k] @ z
            d_w += gamma * (fwd[:, None] * (sx.T @ px) / len(px) + back[:, None] * (sc.T @ pc) / len(pc))
    return d_w.view_as(w) / b, d_p / b


@pytest.mark.parametrize("kind,in_shape,channels", SHAPES)
@pytest.mark.parametrize("tied", [False, True], ids=["clapp", "clapp_s"])
@pytest.mark.parametrize("margin", [1.0, 1e-3, 1e6])
def test_explicit_formula_equals_loss_gradient_and_per_pair_reference(kind, in_shape, channels, tied, margin):
    layer, x, a, ctx_x, ctx_a, pred, retro, pairs = problem(kind, in_shape, channels)
    retro_used = pred.transpose(1, 2) if tied else retro
    closed = clapp_delta(layer, x, a, ctx_x, ctx_a, pred, retro_used, pairs, margin)
    p, r = pred.clone().requires_grad_(), retro.clone().requires_grad_()
    loss = clapp_loss(layer, x, a, ctx_x, ctx_a, p, None if tied else r, pairs, margin)
    params = [layer.weight, p] + ([] if tied else [r])
    grads = torch.autograd.grad(loss, params)
    torch.testing.assert_close(-grads[0], closed.weight, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(-grads[1], closed.pred, rtol=1e-10, atol=1e-12)
    if not tied:
        torch.testing.assert_close(-grads[2], closed.retro, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(loss.detach(), closed.loss)
    ref_w, ref_p = reference_delta(layer, x, ctx_x, pred, retro_used, pairs, margin)
    torch.testing.assert_close(closed.weight, ref_w, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(closed.pred, ref_p, rtol=1e-10, atol=1e-12)
    # the cases the test covers: gamma takes all of +1, -1, 0 at margin 1; none is gated off at 1e6
    z = pooled(layer.rho(a))
    c = pooled(layer.rho(ctx_a.flatten(0, 1))).view(ctx_x.shape[0], ctx_x.shape[1], -1)
    u = torch.stack([(z[pairs.target[k]] * (c[k, pairs.context[k]] @ pred[k].T)).sum(1) for k in range(len(c))])
    gamma = gate(pairs.y, u, margin)
    if margin == 1.0:
        assert {-1.0, 0.0, 1.0} <= set(gamma.flatten().tolist())
        assert ((gamma == 0) & (pairs.y != 0)).any()  # margin met: no plasticity
    if margin == 1e6:
        assert torch.equal(gamma, pairs.y)


@pytest.mark.parametrize("kind,in_shape,channels", SHAPES)
def test_clapp_s_is_the_plain_hinge_loss_gradient(kind, in_shape, channels):
    """Independent of clapp_loss: L = sum max(0, 1 - y z(W)^T P c(W)) / B written out directly."""
    layer, x, a, ctx_x, ctx_a, pred, _, pairs = problem(kind, in_shape, channels, scale=0.3)
    p = pred.clone().requires_grad_()
    k, b = ctx_x.shape[:2]
    z = pooled(F.relu(layer.potential(x)))
    c = pooled(F.relu(layer.potential(ctx_x.flatten(0, 1)))).view(k, b, -1)
    loss = sum(F.relu(1 - pairs.y[i] * (z[pairs.target[i]] * (c[i, pairs.context[i]] @ p[i].T)).sum(1))
               [pairs.y[i] != 0].sum() for i in range(k)) / b
    g_w, g_p = torch.autograd.grad(loss, [layer.weight, p])
    closed = clapp_delta(layer, x, a, ctx_x, ctx_a, pred, pred.transpose(1, 2), pairs, 1.0)
    torch.testing.assert_close(-g_w, closed.weight, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(-g_p, closed.pred, rtol=1e-10, atol=1e-12)


def test_pair_signs_follow_the_modulators_over_the_offset():
    # events T-3..T of 3 eyes: eye 0 stays; eye 1 jumps at T-1; eye 2 starts (m = 0) at T-2
    past = torch.tensor([[1.0, -1.0, 1.0], [1.0, 1.0, 0.0], [1.0, 1.0, 0.0]])  # rows: T-1, T-2, T-3
    now = torch.tensor([1.0, 1.0, 1.0])
    signs = pair_signs(now, past, [1, 2, 3, 4])
    assert signs.tolist() == [[1, 1, 1], [1, -1, 1], [1, -1, 0], [0, 0, 0]]
    assert pair_signs(-now, past, [1]).tolist() == [[-1, -1, -1]]


def test_batch_negatives_pair_positive_contexts_with_another_eyes_target():
    signs = torch.tensor([[1.0, -1.0, 1.0, 0.0]])
    pairs = make_pairs(signs, "batch", 1, torch.tensor([5, 6, 7, 8]), torch.tensor([[5, 6, 8, 8]]))
    assert pairs.target.tolist() == [[0, 1, 2, 3, 1, 2, 3, 0]]
    assert pairs.context.tolist() == [[0, 1, 2, 3, 0, 1, 2, 3]]
    # context 0 (positive) vs eye 1's target: -1; context 2 vs eye 3, which sees the context's stimulus: 0
    assert pairs.y.tolist() == [[1, -1, 1, 0, -1, 0, 0, 0]]
    assert make_pairs(signs, "eye", 1, torch.arange(4), torch.arange(4)[None]).y.tolist() == signs.tolist()


def rule_grads(rule_cls, layer, events, form="closed", timing="immediate", offsets=(1,), margin=1e6,
               negatives="eye"):
    """Feed (x, m) events through a fresh rule; the gradients (encoder, prediction) written at each event."""
    torch.manual_seed(3)
    rule = rule_cls(layer, ClappOptions(offsets=list(offsets), margin=margin, form=form, timing=timing,
                                        negatives=negatives), 0, 1).double()
    grads = []
    for i, (x, m) in enumerate(events):
        with torch.set_grad_enabled(rule.needs_graph):
            a, y = layer(x)
        g = type("G", (), {"index": i, "stimulus": torch.arange(len(x)) % 3})()
        rule.update(Factors(x, a, y, m, g))
        grads.append([layer.weight.grad.clone(), rule.pred.grad.clone()])
    return grads


@pytest.mark.parametrize("rule_cls", [Clapp, ClappS])
@pytest.mark.parametrize("form,timing", [("closed", "immediate"), ("closed", "deferred"), ("loss", "immediate")])
def test_modulator_zero_gives_no_update_and_its_sign_flips_the_update(rule_cls, form, timing):
    layer = make_layer("conv", (2, 5, 5), 3)
    g = torch.Generator().manual_seed(0)
    x0, x1, x2 = (torch.randn(4, 2, 5, 5, dtype=torch.float64, generator=g) for _ in range(3))
    m0, ones = torch.zeros(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64)
    plus, minus, zero = (rule_grads(rule_cls, layer, [(x0, m0), (x1, m), (x2, m0)], form, timing)
                         for m in (ones, -ones, m0))
    assert all(p.abs().sum() > 0 for p in plus[1])
    assert not any(p.any() for p in plus[2])  # event 2 starts a new fixation: no pair, nothing pending
    for event in (1, 2):
        for p, q, z in zip(plus[event], minus[event], zero[event]):
            torch.testing.assert_close(q, -p, rtol=1e-12, atol=1e-14)
            assert torch.equal(z, torch.zeros_like(z))


@pytest.mark.parametrize("rule_cls", [Clapp, ClappS])
def test_deferred_timing_applies_the_same_total_update(rule_cls):
    """Weights held fixed: summed over a run whose last max(offsets) events start new fixations (m = 0, so
    nothing is left pending), the deferred encoder changes equal the immediate ones; the prediction
    weights' changes are identical event by event."""
    layer = make_layer("conv", (2, 5, 5), 3)
    g = torch.Generator().manual_seed(4)
    n, offsets = 14, (1, 3, 4)
    m = torch.where(torch.rand(n, 4, generator=g) < 0.3, -1.0, 1.0).double()
    m[:1] = m[-max(offsets):] = 0
    events = [(torch.randn(4, 2, 5, 5, dtype=torch.float64, generator=g), m[i]) for i in range(n)]
    now, later = (rule_grads(rule_cls, layer, events, "closed", t, offsets, 2.0, "batch")
                  for t in ("immediate", "deferred"))
    total_now, total_later = (sum(e[0] for e in run) for run in (now, later))
    assert total_now.abs().sum() > 0
    torch.testing.assert_close(total_later, total_now, rtol=1e-10, atol=1e-12)
    assert not torch.allclose(now[5][0], later[5][0])  # the timing does differ event by event
    for e_now, e_later in zip(now, later):
        torch.testing.assert_close(e_later[1], e_now[1], rtol=1e-12, atol=1e-14)


def small_config(**rule):
    return {"data": {"source": str(data_path("mnist5k.npz")), "train_limit": 200, "test_limit": 100},
            "eye": {"batch": 8, "jump_prob": 0.3}, "network": {"preset": "tiny"},
            "rule": {"name": "clapp", "optimizer": "adam", "lr": 1e-3, **rule},
            "run": {"events": 30, "progress": False}, "probe": {"train": 100, "test": 50}}


def test_modulator_forced_to_zero_learns_nothing_in_the_engine():
    exp = Experiment(small_config())
    next_glimpse = exp.eye.next_glimpse
    exp.eye.next_glimpse = lambda t: dataclasses.replace(next_glimpse(t), modulator=torch.zeros(8))
    before = [p.detach().clone() for a in exp.agents for p in a.parameters()]
    exp.simulate()
    after = [p.detach() for a in exp.agents for p in a.parameters()]
    assert all(torch.equal(p, q) for p, q in zip(before, after))


@pytest.mark.parametrize("name,negatives,form", [("clapp", "eye", "closed"), ("clapp_s", "batch", "loss")])
def test_engine_run_learns_and_checkpoints_the_context_history(name, negatives, form):
    timing = "immediate" if form == "loss" else "deferred"
    exp = Experiment(small_config(name=name, negatives=negatives, form=form, timing=timing))
    res = exp.run()
    assert set(res["probe"]["layers"]) == {"layer1"}
    w0, w1 = exp.initial_layers[0].weight, exp.layers[0].weight
    assert not torch.allclose(w0, w1)
    assert all(torch.isfinite(torch.tensor(h["layer1/loss"])) for h in exp.history)
    rule = exp.agents[0].rule
    state = rule.state_dict()
    assert state["past_x"].shape == (6, 8, 1, 16, 16)  # the last max(offsets) glimpses of the 8 eyes
    fresh = type(rule)(exp.layers[0], rule.options, 0, 1)
    fresh.load_state_dict(state)
    assert torch.equal(fresh.past_a, rule.past_a) and torch.equal(fresh.pred, rule.pred)
