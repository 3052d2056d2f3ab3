"""Presentations: the eye's per-presentation views (random crop + flip) and draws, unlabelled training
stimuli, the gaze grid's geometry, and summing several events' changes into one optimiser step."""
import numpy as np
import pytest
import torch

from saccade_sim.errors import ConfigError
from saccade_sim.experiment import Experiment
from saccade_sim.policies import GazeSpace
from conftest import data_path, run_and_resumed_run


def crops(**glimpse):
    return {"data": {"source": str(data_path("cifar10_5k.npz")), "normalize": "none", "train_limit": 40},
            "glimpse": {"patch": 8, "stride": 4, "color": "gray", **glimpse},
            "eye": {"batch": 6, "jump_prob": 0.25, "dwell": 10},
            "network": {"preset": "tiny"}, "rule": {"name": "oja"},
            "run": {"events": 30, "check_every": 10, "progress": False}, "probe": {"train": 20, "test": 10}}


def test_a_random_crop_and_flip_is_what_slicing_the_flipped_crop_gives():
    exp = Experiment(crops(random_crop=24, flip=True))
    store, m = exp.eye_store, exp.modality
    assert m.space.high.tolist() == [16, 16] and m.space.size == 25  # a 5x5 grid over the 24x24 crop
    views = m.sample_view(50, torch.Generator().manual_seed(0))
    assert views[:, 0].max() <= 8 and views[:, 1].max() <= 8 and set(views[:, 2].tolist()) == {0, 1}
    idx = torch.arange(50) % len(store)
    gaze = m.space.grid[torch.arange(50) % m.space.size]
    out = m.cut(store, idx, gaze, views)
    for b in range(50):
        oy, ox, flip = views[b].tolist()
        crop = store[idx[b], :, oy:oy + 24, ox:ox + 24]
        if flip:
            crop = crop.flip(-1)
        y, x = gaze[b].tolist()
        assert torch.equal(out[b], crop[:, y:y + 8, x:x + 8])
    # evaluation (the probe) sees the centre crop, unflipped
    centre = m.cut(store, idx[:1], gaze[:1])
    y, x = gaze[0].tolist()
    assert torch.equal(centre[0], store[0, :, 4 + y:4 + y + 8, 4 + x:4 + x + 8])


def test_views_and_draws_are_held_for_a_presentation_and_redrawn_at_the_next():
    exp = Experiment(crops(random_crop=24, flip=True))
    eye = Experiment(crops(random_crop=24, flip=True)).eye
    eye.draws = torch.zeros(eye.batch, 3)  # as if a rule took 3 draws per presentation
    last = None
    for t in range(30):
        g = eye.next_glimpse(float(t))
        if last is not None:
            fresh = (g.modulator < 0) | torch.tensor(t % 10 == 0)  # a jump or a new dwell
            held = ~fresh
            assert torch.equal(g.draws[held], last[0][held]) and torch.equal(eye.view[held], last[1][held])
        last = (g.draws.clone(), eye.view.clone())
        assert ((g.draws >= 0) & (g.draws < 1)).all()
    assert exp.eye.draws.shape == (6, 0)  # oja takes no draws: the eye draws none


def test_resume_with_views_is_bit_identical(tmp_path):
    cfg = crops(random_crop=24, flip=True)
    cfg["rule"] = {"name": "clapp", "sampling": "either", "offsets": [2, 3]}
    ref, second = run_and_resumed_run(cfg, 13, tmp_path)
    assert torch.equal(ref.eye.view, second.eye.view) and torch.equal(ref.eye.draws, second.eye.draws)


def test_unlabelled_stimuli_reach_the_eyes_but_never_the_probe(tmp_path):
    d = np.load(data_path("cifar10_5k.npz"))
    path = tmp_path / "u.npz"
    np.savez(path, x=d["x"][:30], y=d["y"][:30], x_test=d["x_test"][:10], y_test=d["y_test"][:10],
             x_unlabelled=d["x"][30:130])
    cfg = {"data": {"source": str(path)}, "glimpse": {"patch": 16, "stride": 8}, "network": {"preset": "tiny"},
           "rule": {"name": "oja"}, "eye": {"batch": 8, "dwell": 1}, "run": {"events": 40, "progress": False}}
    exp = Experiment(cfg)
    assert len(exp.eye_store) == 130 and len(exp.train_store) == 30 and len(exp.train_labels) == 30
    assert (exp.eye_labels[30:] == -1).all() and (exp.train_labels >= 0).all()
    seen = set()
    exp.simulation.every(1, lambda g: seen.update(g.stimulus.tolist()), channel=0)
    exp.simulate()
    assert max(seen) >= 30  # the eyes looked at unlabelled images
    assert exp.probe()["n_train"] == 30
    assert len(Experiment({**cfg, "data": {"source": str(path), "unlabelled": False}}).eye_store) == 30


def test_gaze_space_geometry():
    ys, xs = [0, 5, 10, 15], [0, 7]
    space = GazeSpace(torch.tensor([(y, x) for x in xs for y in ys]), torch.tensor([15, 7]))
    assert space.axis == 0
    assert space.before(2).tolist() == [-1, -1, 0, 1, -1, -1, 4, 5]
    assert space.before(4).tolist() == [-1] * 8
    assert space.cells(torch.tensor([[10, 7], [10, 6], [0, 0]])).tolist() == [6, -1, 0]
    video = GazeSpace(torch.tensor([(t, y, 0) for t in (0, 2) for y in (0, 3, 6)]), torch.tensor([2, 6, 0]))
    assert video.axis == 1 and video.before(1).tolist() == [-1, 0, 1, -1, 3, 4]


def test_update_every_sums_the_changes_of_that_many_events_into_one_step():
    cfg = {"data": {"source": str(data_path("digits8x8.npz"))}, "glimpse": {"patch": 4},
           "eye": {"batch": 4}, "network": {"layers": [{"channels": 3}]},
           "rule": {"name": "oja", "normalize": False, "lr": 0.1, "update_every": 3},
           "run": {"events": 6, "progress": False}}
    exp = Experiment(cfg)
    agent, w0 = exp.agents[0], exp.agents[0].layer.weight.detach().clone()
    grads = []
    original = agent.rule.update

    def spy(f):
        out = original(f)
        grads.append(agent.layer.weight.grad.clone())
        return out
    agent.rule.update = spy
    exp.simulate(2)
    assert torch.equal(agent.layer.weight, w0)  # no step yet
    exp.simulate(1)
    torch.testing.assert_close(agent.layer.weight.detach(), w0 - 0.1 * sum(grads), rtol=0, atol=1e-7)
    with pytest.raises(ConfigError, match="rule.update_every: must be > 0"):
        Experiment({**cfg, "rule": {"name": "oja", "update_every": 0}})
