"""CLAPP with asynchronous eyes: an event holds some of the batch's eyes (``Glimpse.eyes``); each eye's history
advances only at its own fixations, so its pairs are those of its own fixation sequence."""
import copy
from dataclasses import replace

import pytest
import torch

from agents.rules.base import Factors
from agents.rules.clapp import ClappS, pooled
from saccade_sim.config import load
from saccade_sim.events import Glimpse
from saccade_sim.experiment import Experiment
from conftest import data_path, run_and_resumed_run
from test_clapp import GRID, STRIDE, images, make_layer, make_rule, rel, space


def fixation_sequences(eyes, length, seed):
    """Per eye: its own fixations (grid row, column, modulator), a random walk down the columns with some jumps."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(eyes):
        seq, col = [], int(torch.randint(GRID, (1,), generator=g))
        for t in range(length):
            row = t % GRID
            if row == 0:
                col = int(torch.randint(GRID, (1,), generator=g))
            m = 0.0 if t == 0 else (-1.0 if float(torch.rand(1, generator=g)) < 0.15 else 1.0)
            seq.append((row, col, m))
        out.append(seq)
    return out


def glimpse_of(patches, eyes, fixations, draws, index):
    """The Glimpse of ``eyes`` at their given fixations (row, column, modulator); eye b looks at stimulus b."""
    x = torch.stack([patches[b, r, c] for b, (r, c, _) in zip(eyes, fixations)])
    gaze = torch.tensor([[r * STRIDE, c * STRIDE] for r, c, _ in fixations])
    m = torch.tensor([f[2] for f in fixations], dtype=torch.float64)
    ids = torch.tensor(eyes)
    return x, Glimpse(index, float(index), x, gaze, ids, torch.zeros(len(eyes), dtype=torch.long), m,
                      draws[ids] if draws is not None else None, ids, ids.numpy())


def changes(rule, layer, x, g):
    """dW of every parameter the rule changes (weights fixed: no optimiser step), and the loss."""
    a = layer.potential(x)
    loss = rule.update(Factors(x, a, layer.output(a), g.modulator, g))
    return [-p.grad.clone() for p in rule.weights().values() if p.grad is not None], float(loss)


@pytest.mark.parametrize("timing", ["immediate", "deferred"])
@pytest.mark.parametrize("negatives,sampling", [("jump", "both"), ("location", "either")])
def test_an_eye_learns_from_its_own_fixations_as_with_the_lockstep_rule(timing, negatives, sampling):
    """Three eyes, each its own logical shard, fixating at random subsets of the events: each event's change is
    the mean over its eyes of the change the lockstep rule makes for that eye alone, fed only that eye's own
    fixations (each with its own rule state; the partner of an eye in its own shard is the eye itself)."""
    b, events = 3, 24
    layer = make_layer()
    patches = images(b, seed=7)
    fixed = make_rule(layer, b=1, timing=timing, negatives=negatives, sampling=sampling)
    with torch.no_grad():
        fixed.pred.normal_(0, 8.0, generator=torch.Generator().manual_seed(1))
        fixed.retro.normal_(0, 8.0, generator=torch.Generator().manual_seed(2))
    rule = copy.deepcopy(fixed)
    rule.bind(space(), fixed.draw_columns, 1, b)
    alone = [copy.deepcopy(fixed) for _ in range(b)]
    draws = torch.rand(b, type(fixed).draws_needed(fixed.options), generator=torch.Generator().manual_seed(3),
                       dtype=torch.float64)
    sequences = fixation_sequences(b, events, seed=4)
    done = [0] * b
    gen = torch.Generator().manual_seed(5)
    compared = 0
    for t in range(events):
        eyes = [e for e in range(b) if float(torch.rand(1, generator=gen)) < 0.5 and done[e] < events] or [t % b]
        fixations = [sequences[e][done[e]] for e in eyes]
        x, g = glimpse_of(patches, eyes, fixations, draws, t)
        ours, loss = changes(rule, layer, x, g)
        expected, losses = None, 0.0
        for e, fix in zip(eyes, fixations):
            xe, ge = glimpse_of(patches, [e], [fix], draws, done[e])
            ge = replace(ge, eyes=None)  # the lockstep form: one eye, all of its batch
            own, own_loss = changes(alone[e], layer, xe, ge)
            expected = own if expected is None else [s + o for s, o in zip(expected, own)]
            losses += own_loss
            done[e] += 1
        expected = [s / len(eyes) for s in expected]
        for mine, want in zip(ours, expected):
            assert rel(mine, want) <= 1e-12 or float(want.norm()) == float(mine.norm()) == 0
        assert loss == pytest.approx(losses / len(eyes), rel=1e-12, abs=1e-300)
        compared += float(expected[0].norm()) > 0
    assert compared >= events // 3  # a good share of the events changed the weights
    assert rule.seen[0].tolist() == done


def test_every_eye_in_the_event_is_the_lockstep_rule_bit_for_bit():
    """Glimpse.eyes listing the whole batch in order gives the same steps as the lockstep form (eyes = None)."""
    b = 4
    layer = make_layer()
    patches = images(b, seed=2)
    lockstep = make_rule(layer, b=b)
    listed = copy.deepcopy(lockstep)
    draws = torch.rand(b, 12, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for t in range(2 * GRID):
        col, row = t // GRID, t % GRID
        fixations = [(row, col, 0.0 if t == 0 else 1.0)] * b
        x, g = glimpse_of(patches, list(range(b)), fixations, draws, t)
        one, loss_one = changes(listed, layer, x, g)
        two, loss_two = changes(lockstep, layer, x, replace(g, eyes=None))
        assert all(torch.equal(p, q) for p, q in zip(one, two)) and loss_one == loss_two


def test_a_location_negative_targets_the_absent_partners_newest_glimpse():
    """CLAPP-s (dW: the exact gradient of the hinge of u = z^T P c, through target and context), one shard of two
    eyes: eye 1 fixates (3, 0) and stays there; eye 0 then fixates (1, 0) and (3, 0) alone, its partner eye 1. Its
    positive pair (target (3, 0), context (1, 0)) and its negative (eye 1's newest glimpse, at (3, 0), against the
    same context) give the gradient of the two hinges, computed here by autograd through all three glimpses."""
    layer = make_layer()
    patches = images(2, seed=3)
    rule = make_rule(layer, ClappS, b=2, offsets=[2], timing="immediate", sampling="both")
    rule.bind(space(), rule.draw_columns, 2, 2)
    with torch.no_grad():
        rule.pred.normal_(0, 0.3, generator=torch.Generator().manual_seed(0))
    draws = torch.tensor([[0.75], [0.25]], dtype=torch.float64)  # eye 0's partner: eye 1; eye 1's: eye 0
    steps = [([1], [(3, 0, 0.0)]), ([0], [(1, 0, 0.0)]), ([0], [(3, 0, 1.0)])]
    for t, (eyes, fixations) in enumerate(steps):
        x, g = glimpse_of(patches, eyes, fixations, draws, t)
        got, loss = changes(rule, layer, x, g)
    weight = layer.op.weight.detach().clone().requires_grad_()
    bias = layer.op.bias.detach().clone().requires_grad_()

    def z(inp):
        a = torch.nn.functional.conv2d(inp[None], weight, bias, padding=1)
        return pooled(layer.transmit(layer.output(a)))[0]

    target, negative, context = z(patches[0, 3, 0]), z(patches[1, 3, 0]), z(patches[0, 1, 0])
    w = 1.0 / (GRID * (GRID - 2) * 1)  # 1 / (N_k K n), n = 1 eye selected for each sign
    pc = rule.pred.detach()[0] @ context
    want_loss = w * (torch.relu(1 - target @ pc) + torch.relu(1 + negative @ pc))
    want_w, want_b = torch.autograd.grad(want_loss, [weight, bias])
    assert loss == pytest.approx(float(want_loss.detach()), rel=1e-12) and float(want_loss.detach()) > 0
    assert rel(got[0], -want_w) <= 1e-12 and rel(got[1], -want_b) <= 1e-12


def test_clapp_with_asynchronous_eyes_resumes_bit_identically(tmp_path):
    cfg = {"data": {"source": str(data_path("cifar10_5k.npz")), "train_limit": 64, "test_limit": 32},
           "glimpse": {"patch": 8, "stride": 4, "color": "gray"},
           "eye": {"batch": 4, "fixation_ms": 60.0, "motor": {"timing": "gamma", "bin_ms": 10.0}},
           "network": {"layers": [{"channels": 4, "bias": True}, {"channels": 4, "pool": 2}]},
           "rule": {"name": "clapp", "negatives": "location"}, "run": {"events": 24, "progress": False},
           "probe": {"enabled": False}}
    reference, resumed = run_and_resumed_run(cfg, 11, tmp_path)
    for a, b in zip(reference.agents, resumed.agents):
        for name in a.rule.state_names:
            assert torch.equal(getattr(a.rule, name), getattr(b.rule, name)), name
    assert 0 < int(reference.agents[0].rule.seen.sum()) == reference.eye.emitted


def test_the_active_vision_config_runs_with_clapp():
    cfg = load("configs/active_vision.toml", ["rule.name=clapp", "run.events=20", "probe.enabled=false",
                                              "record.scanpath=0", "data.train_limit=32", "data.test_limit=16"])
    exp = Experiment(cfg)
    exp.simulate()
    rule = exp.agents[0].rule
    assert int(rule.seen.sum()) == exp.eye.emitted and exp.eye.emitted > exp.eye.event
    assert torch.isfinite(exp.agents[0].layer.weight).all()
