"""Scale-out: logical shards make the eye's streams independent of the rank layout, the weight-sync hook
averages changes (K = 1) or weights (K > 1) over ranks, and 2 gloo ranks launched by torchrun learn the same
weights as 1 process with the whole batch."""
import json
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from conftest import data_path
from saccade_sim.config import EyeConfig
from saccade_sim.distributed import World, WeightSync, shutdown
from saccade_sim.errors import ConfigError
from saccade_sim.experiment import Experiment
from saccade_sim.eye import Eye
from saccade_sim.modalities.image import ImageModality, ImageOptions
from saccade_sim.policies import RandomOptions, RandomPolicy

ROOT = Path(__file__).resolve().parents[1]


def test_ranks_run_contiguous_shards_and_uneven_splits_are_refused():
    assert [list(World(r, 2).shards(4)) for r in range(2)] == [[0, 1], [2, 3]]
    assert list(World().shards(3)) == [0, 1, 2]
    with pytest.raises(ConfigError, match="eye.shards: 3 logical shards cannot be split evenly over 2"):
        World(1, 2).shards(3)


def make_eye(shards=None, n_shards=4, batch=8, jump_prob=0.3):
    store = torch.randn(23, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    mod = ImageModality(ImageOptions(patch=4, stride=2), (1, 8, 8))
    cfg = EyeConfig(batch=batch, jump_prob=jump_prob, dwell=3, shards=n_shards)
    return Eye(mod, store, torch.arange(23), RandomPolicy(RandomOptions()), cfg, seed=5, shards=shards)


def test_eyes_over_split_shards_see_what_one_eye_over_all_shards_sees():
    whole, left, right = make_eye(), make_eye([0, 1]), make_eye([2, 3])
    assert (whole.batch, left.batch) == (8, 4)
    for t in range(12):
        g, a, b = whole.next_glimpse(t), left.next_glimpse(t), right.next_glimpse(t)
        for field in ("data", "gaze", "stimulus", "modulator"):
            assert torch.equal(getattr(g, field), torch.cat([getattr(a, field), getattr(b, field)])), field
        # shard s draws only its own part of the store: stimuli s, s + 4, s + 8, ...
        assert torch.equal(g.stimulus % 4, torch.arange(4).repeat_interleave(2))
    assert (g.modulator == -1).any()  # jumps happened


def test_eye_state_moves_between_layouts():
    whole, left, right = make_eye(), make_eye([0, 1]), make_eye([2, 3])
    for t in range(5):
        whole.next_glimpse(t), left.next_glimpse(t), right.next_glimpse(t)
    merged = {**left.state_dict(), "shards": {**left.state_dict()["shards"], **right.state_dict()["shards"]}}
    fresh = make_eye()
    fresh.load_state_dict(merged)
    for t in range(5, 9):
        assert torch.equal(fresh.next_glimpse(t).data, whole.next_glimpse(t).data)
    with pytest.raises(ConfigError, match="no shard 2"):
        make_eye([2, 3]).load_state_dict(left.state_dict())


def _sync_worker(rank: int, rdv: str, results) -> None:
    dist.init_process_group("gloo", init_method=f"file://{rdv}", rank=rank, world_size=2)
    w = World(rank, 2)
    # K = 1: grads averaged; a missing grad counts as zero
    p, q = torch.nn.Parameter(torch.full((2, 3), float(rank))), torch.nn.Parameter(torch.zeros(2))
    p.grad = torch.full((2, 3), 2.0 + 4 * rank)
    q.grad = torch.ones(2) if rank == 0 else None
    WeightSync([p, q], 1, w).before_step()
    # K = 2: weights averaged after the 2nd event only
    r = torch.nn.Parameter(torch.full((3,), 10.0 * rank))
    sync = WeightSync([r], 2, w)
    sync.after_step()
    first = r.detach().clone()
    sync.after_step()
    results[rank] = (p.grad.clone(), q.grad.clone(), first, r.detach().clone())
    dist.destroy_process_group()


@pytest.mark.distributed
def test_weight_sync_averages_changes_every_event_or_weights_every_k(tmp_path):
    results = mp.Manager().dict()
    mp.spawn(_sync_worker, args=(str(tmp_path / "rdv"), results), nprocs=2)
    for rank in range(2):
        pg, qg, first, last = results[rank]
        assert torch.equal(pg, torch.full((2, 3), 4.0)) and torch.equal(qg, torch.full((2,), 0.5))
        assert torch.equal(first, torch.full((3,), 10.0 * rank))  # K = 2: no averaging after event 1
        assert torch.equal(last, torch.full((3,), 5.0))


def config(source: str, sync_every: int = 1) -> dict:
    return {"data": {"source": source, "train_limit": 400},
            "eye": {"batch": 8, "shards": 4, "jump_prob": 0.2},
            "network": {"preset": "small"}, "rule": {"name": "oja", "lr": 0.05},
            "run": {"events": 24, "progress": False},
            "probe": {"train": 60, "test": 30}, "distributed": {"sync_every": sync_every}}


def torchrun(out: Path, cfg: dict) -> subprocess.CompletedProcess:
    """``saccade-sim run`` of ``cfg`` (written beside ``out`` as a JSON config) on 2 gloo ranks."""
    path = out.with_suffix(".json")
    path.write_text(json.dumps(cfg))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "saccade_sim", "run", str(path), "--quiet", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)


@pytest.mark.distributed
def test_two_gloo_ranks_learn_what_one_process_learns_with_the_whole_batch(tmp_path):
    cfg = config(str(data_path("mnist5k.npz")))
    proc = torchrun(tmp_path / "two", cfg)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("input (raw glimpses)") == 1  # only rank 0 reports
    ckpt = torch.load(tmp_path / "two" / "checkpoint.pt", weights_only=False)

    single = Experiment(cfg)
    single.simulate()
    for i, layer in enumerate(single.layers):  # layer 1 transmits centred output: its running means too
        state = ckpt["agents"][i]["layer"]
        assert not torch.allclose(layer.weight, single.initial_layers[i].weight, atol=1e-3)  # it learned
        torch.testing.assert_close(state["op.weight"], layer.weight.detach(), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(state["transmit_mean"], layer.transmit_mean, rtol=1e-4, atol=1e-6)
    assert float(single.layers[0].transmit_mean.abs().min()) > 0
    # the checkpoint holds every shard's stream, exactly as one process has them
    eye = single.eye.state_dict()
    assert sorted(ckpt["eye"]["shards"]) == [0, 1, 2, 3]
    for s in range(4):
        assert torch.equal(ckpt["eye"]["shards"][s]["order"], eye["shards"][s]["order"])
        assert torch.equal(ckpt["eye"]["shards"][s]["stimulus"], eye["shards"][s]["stimulus"])
    results = json.loads((tmp_path / "two" / "results.json").read_text())
    assert results["glimpses"] == 24 * 8 and set(results["probe"]["layers"]) == {"layer1", "layer2"}


def resumed_and_straight(cfg: dict, ckpt: dict, events: int) -> tuple[Experiment, Experiment]:
    """``cfg`` run to ``events`` in one process twice: resumed from the checkpoint ``ckpt``, and from the start."""
    longer = {**cfg, "run": {**cfg["run"], "events": events}}
    resumed, straight = Experiment(longer), Experiment(longer)
    resumed.load_state_dict(ckpt)
    resumed.simulate()
    straight.simulate()
    assert resumed.eye.event == straight.eye.event == events
    return resumed, straight


@pytest.mark.distributed
def test_a_two_rank_clapp_checkpoint_holds_every_eyes_contexts_and_resumes_in_one_process(tmp_path):
    """CLAPP's contexts are per-eye state: the checkpoint stores them per shard from both ranks, so one
    process (all four shards) resumes from it and continues as an uninterrupted one-process run."""
    cfg = config(str(data_path("mnist5k.npz")))
    cfg["rule"] = {"name": "clapp", "optimizer": "sgd", "lr": 0.01}
    proc = torchrun(tmp_path / "two", cfg)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = torch.load(tmp_path / "two" / "checkpoint.pt", weights_only=True)

    single = Experiment(cfg)
    single.simulate()
    for saved, agent in zip(ckpt["agents"], single.agents):
        for name in agent.rule.eye_buffers:
            assert sorted(saved["rule"][name]) == [0, 1, 2, 3]
            joined = torch.cat([saved["rule"][name][s] for s in range(4)], 1)
            torch.testing.assert_close(joined, getattr(agent.rule, name).cpu(), rtol=1e-4, atol=1e-5)

    resumed, straight = resumed_and_straight(cfg, ckpt, 40)
    for a, b in zip(resumed.agents, straight.agents):
        torch.testing.assert_close(a.layer.weight, b.layer.weight, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(a.rule.pred, b.rule.pred, rtol=1e-4, atol=1e-5)


@pytest.mark.distributed
def test_torchrun_runs_the_default_config_on_two_ranks(tmp_path):
    """eye.shards = "auto" (the default) gives one logical shard per rank, recorded in config.json."""
    proc = torchrun(tmp_path / "two", {"run": {"events": 2}, "probe": {"train": 24, "test": 12}})
    assert proc.returncode == 0, proc.stderr[-3000:]
    config = json.loads((tmp_path / "two" / "config.json").read_text())
    assert config["eye"]["shards"] == 2 and config["eye"]["batch"] == 16
    assert json.loads((tmp_path / "two" / "results.json").read_text())["glimpses"] == 2 * 16


def test_auto_shards_are_one_per_rank_and_need_an_even_split():
    assert Experiment({"run": {"events": 1}, "data": {"crops_per_photo": 4}}).config.eye.shards == 1
    with pytest.raises(ConfigError, match="eye.batch: 16 eyes cannot be split evenly over 3 ranks"):
        with mock.patch("saccade_sim.distributed.world", return_value=World(0, 3)):
            Experiment({"data": {"crops_per_photo": 4}})


@pytest.mark.parametrize("clean", [True, False])
def test_ranks_leave_the_group_together_after_a_clean_run_and_at_once_after_a_failure(clean):
    calls = []
    with mock.patch.object(dist, "is_initialized", return_value=True), \
            mock.patch.object(dist, "barrier", side_effect=lambda: calls.append("barrier")), \
            mock.patch.object(dist, "destroy_process_group", side_effect=lambda: calls.append("destroy")):
        shutdown(clean=clean)
    assert calls == (["barrier", "destroy"] if clean else ["destroy"])


def dendritic_config(source: str) -> dict:
    """A top-down edge layer2 -> layer1 (Urbanczik & Senn), 4 logical shards of 2 eyes."""
    return {"data": {"source": source, "train_limit": 200}, "glimpse": {"patch": 4, "stride": 2},
            "eye": {"batch": 8, "shards": 4, "jump_prob": 0.2},
            "network": {"layers": [{"channels": 4}, {"channels": 6, "pool": 2}],
                        "edges": [{"source": "layer2", "target": "layer1", "kind": "topdown", "delay_ms": 5.0}]},
            "rule": {"name": "urbanczik_senn", "lr": 0.5}, "run": {"events": 6, "progress": False},
            "probe": {"train": 40, "test": 20}}


def test_dendritic_inputs_are_checkpointed_per_shard_and_restored_on_another_layout():
    cfg = dendritic_config(str(data_path("digits8x8.npz")))
    whole = Experiment(cfg)
    whole.simulate()
    delivered = whole.agents[0].dendritic_inputs["layer2"]  # [8, 6, 2, 2]: every eye's last layer2 output
    saved = whole.state_dict()["agents"][0]["dendritic_inputs"]["layer2"]
    assert sorted(saved) == [0, 1, 2, 3]
    for s in range(4):
        assert torch.equal(saved[s], delivered[2 * s:2 * s + 2].cpu())
    # rank 1 of 2 runs shards 2 and 3 (eyes 4..7): it restores exactly those
    with mock.patch("saccade_sim.distributed.world", return_value=World(1, 2)):
        half = Experiment(cfg)
    half.load_state_dict(whole.state_dict())
    assert torch.equal(half.agents[0].dendritic_inputs["layer2"], delivered[4:])
    assert torch.equal(half.agents[0].dendrites[0].weight, whole.agents[0].dendrites[0].weight)


@pytest.mark.distributed
def test_a_two_rank_checkpoint_with_a_dendritic_edge_resumes_in_one_process(tmp_path):
    """The outputs a top-down edge delivered are per-eye state: the checkpoint of 2 ranks stores them per shard,
    and one process (all four shards) resumes from it as an uninterrupted one-process run continues."""
    cfg = dendritic_config(str(data_path("digits8x8.npz")))
    proc = torchrun(tmp_path / "two", cfg)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = torch.load(tmp_path / "two" / "checkpoint.pt", weights_only=True)
    single = Experiment(cfg)
    single.simulate()
    saved = ckpt["agents"][0]["dendritic_inputs"]["layer2"]
    assert sorted(saved) == [0, 1, 2, 3]
    torch.testing.assert_close(torch.cat([saved[s] for s in range(4)]), single.agents[0].dendritic_inputs["layer2"],
                               rtol=1e-4, atol=1e-5)

    resumed, straight = resumed_and_straight(cfg, ckpt, 12)
    for a, b in zip(resumed.agents, straight.agents):
        for p, q in zip(a.parameters(), b.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)
