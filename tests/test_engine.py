"""The event engine: broadcast fan-out, eye/modulator semantics, policies, image glimpse geometry."""
import simpy
import torch

from saccade_sim.config import EyeConfig, resolve
from saccade_sim.errors import ConfigError
from saccade_sim.events import Broadcast
from saccade_sim.eye import Eye
from saccade_sim.modalities.base import grid_positions
from saccade_sim.modalities.image import ImageModality, ImageOptions
from saccade_sim.policies import RandomOptions, RandomPolicy, RasterPolicy
import pytest


def test_broadcast_reaches_every_subscriber_at_the_same_time():
    env = simpy.Environment()
    ch = Broadcast(env)
    seen = []

    def sub(name):
        while True:
            v = yield ch.wait()
            seen.append((name, v, env.now))

    def pub():
        for i in range(3):
            yield env.timeout(10)
            ch.publish(i)

    for n in "ab":
        env.process(sub(n))
    env.process(pub())
    env.run()
    assert seen == [(n, i, 10.0 * (i + 1)) for i in range(3) for n in "ab"]


def test_grid_positions_cover_the_axis():
    assert grid_positions(64, 16, 0) == [0, 8, 16, 24, 32, 40, 48]
    assert grid_positions(28, 16, 0) == [0, 6, 12]
    assert grid_positions(16, 16, 0) == [0]
    assert grid_positions(20, 8, 4) == [0, 4, 8, 12]


def test_image_cut_matches_slicing_and_raster_runs_down_columns():
    store = torch.arange(2 * 3 * 10 * 12, dtype=torch.float32).view(2, 3, 10, 12)
    mod = ImageModality(ImageOptions(patch=4, stride=3), (3, 10, 12))
    grid = mod.space.grid
    assert grid[:3].tolist() == [[0, 0], [3, 0], [6, 0]]  # y varies fastest: down the first column
    idx, gaze = torch.tensor([1, 0]), torch.tensor([[6, 8], [0, 3]])
    out = mod.cut(store, idx, gaze)
    assert out.shape == (2, 3, 4, 4)
    torch.testing.assert_close(out[0], store[1, :, 6:10, 8:12])
    torch.testing.assert_close(out[1], store[0, :, 0:4, 3:7])
    with pytest.raises(ConfigError, match="glimpse.patch"):
        ImageModality(ImageOptions(patch=11), (3, 10, 12))


def make_eye(jump_prob=0.0, dwell=0, batch=4, n=10, policy=None):
    store = torch.randn(n, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    mod = ImageModality(ImageOptions(patch=4, stride=2), (1, 8, 8))
    cfg = EyeConfig(batch=batch, jump_prob=jump_prob, dwell=dwell)
    return Eye(mod, store, torch.arange(n), policy or RasterPolicy(), cfg, seed=0)


def test_eye_modulator_marks_first_fixation_saccades_and_stimulus_changes():
    eye = make_eye()  # dwell = 9 grid positions
    gs = [eye.next_glimpse(float(t)) for t in range(19)]
    assert (gs[0].modulator == 0).all()
    assert all((g.modulator == 1).all() for g in gs[1:9])
    assert (gs[9].modulator == -1).all()  # new stimuli after one raster pass
    assert torch.equal(gs[8].stimulus, gs[0].stimulus) and not torch.equal(gs[9].stimulus, gs[0].stimulus)
    assert [g.gaze[0].tolist() for g in gs[:2]] == [[0, 0], [2, 0]]


def test_eye_jumps_change_stimulus_exactly_where_modulator_is_minus_one():
    eye = make_eye(jump_prob=0.5, batch=32, n=50)
    prev = eye.next_glimpse(0.0)
    jumps = 0
    for t in range(1, 8):
        g = eye.next_glimpse(float(t))
        assert torch.equal(g.modulator == -1, g.stimulus != prev.stimulus)
        jumps += int((g.modulator == -1).sum())
        prev = g
    assert 0.3 < jumps / (7 * 32) < 0.6  # about jump_prob (minus jumps that drew the same stimulus)


def test_eye_is_deterministic_and_restores_its_state():
    a, b = make_eye(0.3, policy=RandomPolicy(RandomOptions(free=True))), make_eye(0.3, policy=RandomPolicy(RandomOptions(free=True)))
    for t in range(5):
        a.next_glimpse(t), b.next_glimpse(t)
    state = a.state_dict()
    ga = [a.next_glimpse(t) for t in range(5)]
    b.load_state_dict(state)
    gb = [b.next_glimpse(t) for t in range(5)]
    for x, y in zip(ga, gb):
        assert torch.equal(x.data, y.data) and torch.equal(x.gaze, y.gaze)
    assert all((g.gaze >= 0).all() and (g.gaze <= 4).all() for g in ga)


def test_conduction_delay_must_be_shorter_than_a_fixation():
    with pytest.raises(ConfigError, match=r"network.layers\[0\].delay_ms"):
        resolve({"eye": {"fixation_ms": 100}, "network": {"layers": [{"delay_ms": 150}]}})


def test_layer_agents_see_glimpses_after_their_conduction_delay():
    from saccade_sim.experiment import Experiment

    exp = Experiment({"data": {"source": "natural", "crops_per_photo": 10}, "network": {"layers": [
        {"channels": 4, "delay_ms": 5.0}, {"channels": 4, "delay_ms": 7.0}]}, "probe": {"enabled": False},
        "run": {"events": 3, "progress": False}})
    times = {0: [], 1: [], 2: []}
    for c in times:
        exp.simulation.every(1, lambda g, c=c: times[c].append(exp.simulation.env.now), channel=c)
    exp.simulate()
    assert times[0] == [200.0, 400.0, 600.0]
    assert times[1] == [205.0, 405.0, 605.0]
    assert times[2] == [212.0, 412.0, 612.0]


@pytest.mark.parametrize("policy", [RasterPolicy(), RandomPolicy(RandomOptions(free=True))])
def test_eye_draws_do_not_depend_on_the_block_length_and_its_state_is_that_of_the_last_event(policy):
    """Draws made a block at a time (one copy per block) equal draws made event by event, and a state taken
    inside a block (replayed to the last emitted event) resumes the same stream."""
    def eye(block):
        store = torch.randn(30, 1, 8, 8, generator=torch.Generator().manual_seed(1))
        mod = ImageModality(ImageOptions(patch=4, stride=2), (1, 8, 8))
        return Eye(mod, store, torch.arange(30) % 3, policy, EyeConfig(batch=6, jump_prob=0.3, shards=2), seed=0,
                   block_events=block)

    one, seven = eye(1), eye(7)
    assert seven.block_events == 7 and eye(0).block_events == 256  # default: min(256, 2^16 // batch)
    fields = ("data", "gaze", "stimulus", "label", "modulator")
    for t in range(40):
        a, b = one.next_glimpse(float(t)), seven.next_glimpse(float(t))
        assert all(torch.equal(getattr(a, f), getattr(b, f)) for f in fields)
        if t in (9, 13):  # inside a block of 7 (events 7-13), and at its end
            sa, sb = one.state_dict(), seven.state_dict()
            assert sa["event"] == sb["event"] == t + 1
            for s in sa["shards"]:
                assert all(torch.equal(torch.as_tensor(sa["shards"][s][k]), torch.as_tensor(sb["shards"][s][k]))
                           for k in sa["shards"][s])
    resumed = eye(5)
    resumed.load_state_dict(seven.state_dict())
    for t in range(40, 52):
        a, b = seven.next_glimpse(float(t)), resumed.next_glimpse(float(t))
        assert all(torch.equal(getattr(a, f), getattr(b, f)) for f in fields)
