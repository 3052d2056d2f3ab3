"""Closed-loop policies: saliency, surprise, inhibition of return, against independent computations."""
import pytest
import torch

from conftest import data_path, run_and_resumed_run
from saccade_sim.closed_loop import (InhibitionOfReturnPolicy, SaliencyOptions, SaliencyPolicy, SurpriseOptions,
                                     SurprisePolicy, cell_means, saliency_map)
from saccade_sim.modalities.image import ImageModality, ImageOptions

SPACE = ImageModality(ImageOptions(patch=8, stride=4), (1, 32, 32)).space  # 7 x 7 grid, top-left corners


def spot_image(y: int, x: int, batch: int = 1) -> torch.Tensor:
    img = torch.zeros(batch, 1, 32, 32)
    img[:, :, y:y + 3, x:x + 3] = 1.0
    return img


def observe(policy, channels, gaze, modulator=1.0):
    b = len(gaze)
    policy.observe({"modulator": torch.full((b,), modulator), **channels}, gaze)


def covers(gaze: torch.Tensor, y: int, x: int) -> bool:
    return bool(gaze[0] <= y < gaze[0] + 8 and gaze[1] <= x < gaze[1] + 8)


def test_saliency_of_a_constant_image_is_zero_and_of_a_spot_peaks_there():
    assert saliency_map(torch.full((1, 1, 32, 32), 0.7)).abs().max() < 1e-6
    s = saliency_map(spot_image(20, 6))[0]
    y, x = divmod(int(s.argmax()), 32)
    assert abs(y - 21) <= 2 and abs(x - 7) <= 2


def test_cell_means_are_box_means_of_the_map():
    s = torch.rand(2, 32, 32)
    expected = torch.stack([torch.stack([s[b, y:y + 8, x:x + 8].mean() for y, x in SPACE.grid.tolist()])
                            for b in range(2)])
    assert torch.allclose(cell_means(s, SPACE.grid, SPACE.high.tolist()), expected, atol=1e-6)


def test_a_single_bright_spot_is_fixated_first_then_not_revisited_at_once():
    policy = SaliencyPolicy(SaliencyOptions())
    policy.bind(SPACE)
    gen = torch.Generator().manual_seed(0)
    stimulus = spot_image(21, 5)
    observe(policy, {"stimulus": stimulus}, SPACE.grid[:1], 0.0)  # the first fixation (top-left), a new stimulus
    first = policy.sample(1, 1, SPACE, gen)[0]
    scores = cell_means(saliency_map(stimulus), SPACE.grid, SPACE.high.tolist())[0]
    assert torch.equal(first, SPACE.grid[scores.argmax()]) and covers(first, 22, 6)
    observe(policy, {"stimulus": stimulus}, first[None])  # it looked there: inhibition of return
    second = policy.sample(2, 1, SPACE, gen)[0]
    assert not torch.equal(second, first)
    assert torch.equal(second, SPACE.grid[scores.masked_fill(scores == scores.max(), -1).argmax()])


def test_inhibition_of_return_visits_every_cell_before_returning():
    policy = InhibitionOfReturnPolicy()
    policy.bind(SPACE)
    gen = torch.Generator().manual_seed(1)
    gaze = SPACE.grid[:1]
    seen = []
    for step in range(1, SPACE.size + 1):
        observe(policy, {}, gaze)
        seen.append(SPACE.cells(gaze)[0].item())
        gaze = policy.sample(step, 1, SPACE, gen)
    # the inhibition of a cell visited n fixations ago is 0.9^n: the least recently visited cell always wins
    assert sorted(seen) == list(range(SPACE.size))


def test_surprise_gazes_follow_the_error_channel_they_read():
    gen = torch.Generator().manual_seed(0)
    chosen = []
    for errors in ((1.0, 0.1), (0.1, 1.0)):
        policy = SurprisePolicy(SurpriseOptions(channel="layer1/loss", ior_weight=0.0))
        policy.bind(SPACE)
        for cell, err in zip((10, 30), errors):
            observe(policy, {"layer1/loss": torch.tensor([err])}, SPACE.grid[cell][None])
        chosen.append(SPACE.cells(policy.sample(3, 1, SPACE, gen))[0].item())
    assert chosen == [10, 30]  # the larger remembered error; unvisited cells count as the mean (0.55)


def test_maps_are_cleared_when_the_stimulus_changes():
    policy = SurprisePolicy(SurpriseOptions(ior_weight=0.0))
    policy.bind(SPACE)
    observe(policy, {"layer1/loss": torch.tensor([1.0])}, SPACE.grid[10][None])
    observe(policy, {"layer1/loss": torch.tensor([0.5])}, SPACE.grid[30][None], modulator=-1.0)
    known = (~policy.value.isnan()).nonzero()[:, 1].tolist()
    assert known == [30] and policy.inhibition[0, 10] == 0


def test_each_eye_chooses_from_its_own_rows_in_shard_order():
    policy = SaliencyPolicy(SaliencyOptions(ior_weight=0.0))
    policy.bind(SPACE)
    stimulus = torch.cat([spot_image(2, 2), spot_image(25, 25)])
    observe(policy, {"stimulus": stimulus}, SPACE.grid[[24, 24]], 0.0)
    gen = torch.Generator().manual_seed(0)
    a, b = policy.sample(1, 1, SPACE, gen)[0], policy.sample(1, 1, SPACE, gen)[0]  # two shards of one eye
    assert covers(a, 3, 3) and covers(b, 26, 26)


def clapp_cfg(policy: str, events: int = 20) -> dict:
    return {"data": {"source": str(data_path("cifar10_5k.npz")), "train_limit": 64, "test_limit": 32},
            "glimpse": {"patch": 8, "stride": 4, "color": "gray", "random_crop": 32, "flip": True},
            "eye": {"policy": policy, "batch": 4, "jump_prob": 0.0}, "rule": {"name": "clapp"},
            "network": {"layers": [{"channels": 8, "bias": True}, {"channels": 8, "pool": 2}]},
            "run": {"events": events, "progress": False}, "probe": {"enabled": False}}


@pytest.mark.parametrize("policy", ["surprise"])
def test_closed_loop_runs_resume_bit_identically(policy, tmp_path):
    reference, resumed = run_and_resumed_run(clapp_cfg(policy), 9, tmp_path)
    assert torch.equal(reference.eye.policy.inhibition, resumed.eye.policy.inhibition)


def test_closed_loop_gazes_in_the_engine_read_the_network():
    """The same run with the surprise policy reading layer 1's or layer 2's error fixates differently."""
    from saccade_sim.experiment import Experiment

    traces = []
    for channel in ("layer1/loss", "layer2/loss"):
        cfg = clapp_cfg("surprise", 25)
        cfg["eye"]["channel"] = channel
        exp = Experiment(cfg)
        gazes = []
        exp.every(1, lambda g: gazes.append(g.gaze.clone()), channel=0)
        exp.simulate()
        traces.append(torch.stack(gazes))
    assert not torch.equal(traces[0], traces[1])


@pytest.mark.parametrize("policy, extra", [("saliency", {"mix": 0.3}), ("ior", {"mix_with": "raster", "mix": 0.5})])
def test_closed_loop_gazes_do_not_depend_on_the_block_of_draws(policy, extra):
    """The random part of a closed-loop fixation is drawn ahead in the Eye's blocks, the choice made at the event:
    one event per block and the default block give the same gazes and weights."""
    from saccade_sim.experiment import Experiment

    runs = []
    for block in (1, 0):
        cfg = clapp_cfg(policy, 30)
        cfg["eye"].update(extra, jump_prob=0.2)
        exp = Experiment(cfg)
        if block:
            exp.eye.block_events = block
        gazes = []
        exp.every(1, lambda g: gazes.append(g.gaze.clone()), channel=0)
        exp.simulate()
        runs.append((torch.stack(gazes), [a.layer.weight.detach().clone() for a in exp.agents], exp.eye.block_events))
    (g1, w1, b1), (g2, w2, b2) = runs
    assert b1 == 1 and b2 > 30  # the default block holds the whole run
    assert torch.equal(g1, g2) and all(torch.equal(p, q) for p, q in zip(w1, w2))
