"""The benchmark scripts run from one command: the CLAPP learning curve and the Hebbian reproduction (their seeds
are sweep runs, read back when the command runs again), and the comparisons, which exit when their two sides
drift apart."""
import argparse
import importlib
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import data_path

ROOT = Path(__file__).resolve().parents[1]


def _bench(name: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / name), *args], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _gain_text(trained: list[float], random: list[float]) -> tuple[str, str, str]:
    """The paired gain's mean, sd and '(k/2' as the tables print them, computed here from the run folders."""
    gains = [t - b for t, b in zip(trained, random)]
    return f"{statistics.fmean(gains):+.3f}", f"{statistics.stdev(gains):.3f}", f"({sum(g > 0 for g in gains)}/2"


def test_clapp_curve_probes_each_budget_of_each_seed_run_and_reads_them_back(tmp_path):
    """Budgets 10 and 30 are probed every 10 events (20 between them) in one run per seed; the table's paired
    gains are those of the run folders, and the same command again reruns nothing."""
    small = ["--config", "default", "--budgets", "10", "30", "--seeds", "0", "1", "--threads", "2",
             "--set", f"data.source={data_path('mnist5k.npz')}", "--set", "probe.train=60", "--set", "probe.test=40",
             "--set", "network.layers=[{channels=4, pool=2}]", "--out", str(tmp_path / "runs"),
             "--json", str(tmp_path / "c.json")]
    out = _bench("clapp_curve.py", *small)
    assert "done base seed 0" in out and "done base seed 1" in out
    assert "probed every 10 events (3 budgets for the 2 asked)" in out
    folders = [tmp_path / "runs" / "base" / f"seed{s}" for s in (0, 1)]
    random = [json.loads((f / "results.json").read_text())["probe"]["baselines"]["random"]["layer1"] for f in folders]
    decoding = [json.loads((f / "decoding.json").read_text()) for f in folders]
    assert [p["event"] for p in decoding[0]] == [10, 20, 30]
    for i, events in enumerate((10, 20, 30)):
        row = next(line for line in out.splitlines() if line.startswith(f"| base | {events} | layer1 | 2 |"))
        mean, sd, above = _gain_text([d[i]["layer1"] for d in decoding], random)
        assert row.split("|")[7].split() == [mean, "±", sd, above, "above)"]
    saved = json.loads((tmp_path / "c.json").read_text())
    assert [r["seed"] for r in saved["runs"]] == [0, 1] and saved["step"] == 10
    assert [p["events"] for p in saved["runs"][0]["curve"]] == [0, 10, 20, 30]
    again = _bench("clapp_curve.py", *small)
    assert "done base" not in again and "2 of 2 seed(s) [0, 1] finished" in again
    assert again.split("| combination |")[1] == out.split("| combination |")[1]
    labelled = _bench("clapp_curve.py", *small, "--label-sizes", "20", "60")  # 60 = probe.train: the runs' probe
    finals = [json.loads((f / "results.json").read_text())["probe"]["layers"]["layer1"] for f in folders]
    row = next(line for line in labelled.splitlines() if line.split("|")[1:3] and
               [c.strip() for c in line.split("|")[1:3]] == ["60", "layer1"])
    mean, sd, above = _gain_text(finals, random)
    assert row.split("|")[5].split() == [mean, "±", sd, above, "above)"]
    assert all((f / "label_curve.json").exists() for f in folders)


def test_hebbian_reproduction_joins_seeds_run_in_two_sittings_and_its_curve(tmp_path):
    """Seed 0 first, then the command that names seeds 0 and 1: seed 0 is read back, and the per-layer table
    (trained, random twin, raw input, paired gain) is over both; the curve part probes during the runs."""
    tiny = ["--set", "run.events=4", "--set", "probe.train=60", "--set", "probe.test=40", "--set", "eye.batch=16",
            "--set", "network.layers=[{channels=4, kernel=3, pool=2}, {channels=4, kernel=3}]",
            "--out", str(tmp_path / "runs")]
    first = _bench("hebbian_reproduction.py", "--parts", "sphere", "--seeds", "0", *tiny,
                   "--json", str(tmp_path / "a.json"))
    assert "sphere: done base seed 0" in first and "1 seed(s)" in first
    out = _bench("hebbian_reproduction.py", "--parts", "sphere", "curve", "--curve-config", "sphere", "--curve-events",
                 "4", "--curve-every", "2", "--seeds", "0", "1", *tiny, "--json", str(tmp_path / "all.json"))
    assert "sphere: done base seed 0" not in out and "sphere: done base seed 1" in out
    runs = json.loads((tmp_path / "all.json").read_text())["runs"]
    assert [r["seed"] for r in runs["sphere"]] == [0, 1] and runs["sphere"][0]["status"] == "skipped"
    assert "sphere: configs/sphere.toml, 4 events x 16 images, 60/40 probe" in out and "2 seed(s)" in out
    probes = [r["results"]["probe"] for r in runs["sphere"]]
    row = next(line for line in out.splitlines() if line.startswith("| layer2 "))
    mean, sd, above = _gain_text([p["layers"]["layer2"] for p in probes],
                                 [p["baselines"]["random"]["layer2"] for p in probes])
    assert row.split("|")[4].split() == [mean, "±", sd, above, "above)"]
    curve = out[out.index("curve: configs/sphere.toml"):].splitlines()
    budgets = [line.split("|")[2].strip() for line in curve if line.startswith("| base |")]
    assert budgets == ["0"] * 3 + ["2", "2", "4", "4"]  # the input and both layers at 0, the layers at 2 and 4
    assert [p["events"] for p in runs["curve"][1]["curve"]] == [0, 2, 4]


def test_hebbian_reproduction_label_curves_end_at_the_runs_own_probe(tmp_path):
    """The labels part runs (or reads back) both Miconi variants and probes each run with 20 and 60 labels: at
    60 (= probe.train) the curve is the run's own final probe; the table's layer3 - layer1 is the curve's."""
    tiny = ["--set", "run.events=2", "--set", "probe.train=60", "--set", "probe.test=40", "--set", "eye.batch=8",
            "--set", "data.train_limit=200", "--set", "data.test_limit=40", "--out", str(tmp_path / "runs")]
    out = _bench("hebbian_reproduction.py", "--parts", "labels", "--seeds", "0", "--label-sizes", "20", "60", *tiny,
                 "--json", str(tmp_path / "l.json"))
    saved = json.loads((tmp_path / "l.json").read_text())
    for variant in ("miconi_plain", "miconi"):
        (run,) = saved["runs"][variant]
        (curve,) = saved["labels"][variant]
        assert curve["sizes"] == [20, 60]
        assert curve["trained"]["60"] == list(run["results"]["probe"]["layers"].values())
        assert curve["random"]["60"] == list(run["results"]["probe"]["baselines"]["random"].values())
        rise = curve["trained"]["20"][-1] - curve["trained"]["20"][0]
        row = next(line for line in out.splitlines() if line.startswith(f"| {variant} ") and "| 20 " in line)
        assert f"{rise:+.3f} (rises in {int(rise > 0)}/1)" in row


def _script(name: str, *args: str, threads: bool = True) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / "benchmarks" / name), *(["--threads", "1"] if threads else []), *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          timeout=600)


def _module(name: str):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


def _row(stdout: str, first: str) -> list[str]:
    return next(line.split() for line in stdout.splitlines() if line.split()[:1] == [first])


def test_engine_overhead_runs_its_comparison_and_both_sides_end_identical(tmp_path):
    out = _script("engine_overhead.py", "--data", str(data_path("mnist5k.npz")), "--batches", "3", "--glimpses", "15",
                  "--min-events", "5", "--repeats", "2", "--json", str(tmp_path / "e.json"))
    assert out.returncode == 0, out.stderr
    row = json.loads((tmp_path / "e.json").read_text())["rows"][0]
    assert row["max |dW|"] == 0 and row["events"] == 5 and _row(out.stdout, "3")[-1] == "0"


def test_engine_overhead_exits_when_the_hand_loop_drifts():
    bench = _module("engine_overhead")
    args = argparse.Namespace(data=data_path("mnist5k.npz"), preset="small", rule="oja", glimpses=6, min_events=3,
                              repeats=1)

    def drifting(exp, events):  # the hand loop without the layers' adaptation (what the old loop skipped)
        for agent in exp.agents:
            agent.layer.adapt = lambda pooled: None
        bench.hand_loop(exp, events)

    with pytest.raises(SystemExit, match=r"comparison drifted: batch 2: .* differ by max \|dW\| = "):
        bench.measure(args, 2, loop=drifting)


def test_local_vs_backprop_runs_its_comparison_with_identical_forward_passes(tmp_path):
    out = _script("local_vs_backprop.py", "--data", str(data_path("mnist5k.npz")), "--presets", "small", "--batch", "4",
                  "--steps", "2", "--repeats", "1", "--json", str(tmp_path / "l.json"))
    assert out.returncode == 0, out.stderr
    assert "identical forward passes and both sides learning (checked)" in out.stdout
    assert json.loads((tmp_path / "l.json").read_text())["rows"][0]["local/backprop"] > 0


def test_local_vs_backprop_exits_when_the_forward_passes_differ_or_a_side_does_not_learn():
    bench = _module("local_vs_backprop")
    args = argparse.Namespace(data=data_path("mnist5k.npz"), batch=4, rule="oja", optimizer="sgd", set=[], steps=2,
                              repeats=1)

    class Uncentred(bench.Backprop):  # the `small` preset's first layer transmits centred outputs
        def encode(self, x):
            for layer in self.layers:
                x = layer.pool(layer(x)[1])
            return x

    with pytest.raises(SystemExit, match="forward passes of small differ by"):
        bench.measure(args, "small", backprop=Uncentred)
    with pytest.raises(SystemExit, match="the backprop step of small changed no weight"):
        bench.measure(args, "small", backprop=lambda exp, opt, lr: bench.Backprop(exp, opt, 0.0))


def test_the_gpu_benchmark_runs_its_cpu_path_and_counts_flops_and_syncs(tmp_path):
    out = _script("gpu.py", "--device", "cpu", "--data", str(data_path("mnist5k.npz")), "--presets", "small",
                  "--rules", "oja", "--batches", "2", "4", "--events", "2", "--repeats", "1", "--warmup", "2",
                  "--check-every", "4", "--ratio-batch", "2", "--ratio-steps", "2", "--matmul", "128",
                  "--json", str(tmp_path / "g.json"))
    assert out.returncode == 0, out.stderr
    r = json.loads((tmp_path / "g.json").read_text())
    assert [row["batch"] for row in r["rows"]] == [2, 4] and r["matmul_flops"] > 0
    # small = conv 1->32 at 16x16 and 32->64 at 8x8 (3x3): forward + weight gradient, 2 FLOPs per multiply-add
    per_glimpse = 2 * 2 * 9 * (1 * 32 * 16 * 16 + 32 * 64 * 8 * 8)
    assert [row["GFLOP/event"] * 1e9 for row in r["rows"]] == pytest.approx([2 * per_glimpse, 4 * per_glimpse], rel=0.01)
    assert all(0 < row["of mm"] < 1 and row["glimpses/s"] > 0 for row in r["rows"])
    assert r["syncs"] == [{"preset": "small", "rule": "oja", "syncs/event": 2 / 4, "copies/event": 1 / 4,
                           "unexpected/event": 0.0, "where": []}]  # one read per layer and check, one block copy
    assert r["ratios"][0]["local/backprop"] > 0 and "not measured" not in out.stdout


def test_the_memory_benchmark_traces_every_phase_of_the_job(tmp_path):
    sets = [f"data.source={data_path('mnist5k.npz')}", "data.train_limit=100", "data.test_limit=40", "probe.train=40",
            "probe.test=20"]
    out = _script("memory.py", "--events", "3", *(a for s in sets for a in ("--set", s)), "--json", str(tmp_path / "m.json"))
    assert out.returncode == 0, out.stderr
    r = json.loads((tmp_path / "m.json").read_text())
    peaks = {row["phase"]: row["peak MB"] for row in r["rows"]}
    assert set(peaks) == {f"{path.rsplit('.', 1)[-1]}.{attr}" for path, attr in _module("memory").PHASES}
    assert peaks["Experiment.probe"] >= max(peaks["evaluation.grid_features"], peaks["evaluation.ridge_probe"])
    assert r["peak_mb"] >= max(peaks.values()) >= r["imported_mb"] > 0 and set(r["probe"]["layers"]) == {"layer1", "layer2"}


def test_distributed_scaling_exits_when_two_ranks_at_k1_do_not_learn_what_one_rank_learns():
    bench = _module("distributed_scaling")
    w = torch.randn(4, 3)
    bench.WEIGHTS.update({(1, 1): [w], (2, 1): [w * (1 + 1e-6)]})
    bench.same_as_one_rank(2)  # float reduction order: accepted
    bench.WEIGHTS[(2, 1)] = [w + 1e-2]
    with pytest.raises(SystemExit, match="layer 1: 2 ranks at K = 1 end 0.01 away from 1 rank"):
        bench.same_as_one_rank(2)


@pytest.mark.slow
def test_distributed_scaling_runs_its_launches_and_checks_them(tmp_path):
    out = _script("distributed_scaling.py", "--data", str(data_path("mnist5k.npz")), "--events", "6", "--repeats", "1",
                  "--ks", "1", "4", "--json", str(tmp_path / "d.json"), threads=False)
    assert out.returncode == 0, out.stderr
    assert [(r["ranks"], r["K"]) for r in json.loads((tmp_path / "d.json").read_text())["rows"]] == [(1, 1), (2, 1), (2, 4)]


def test_active_vision_overhead_compares_identical_asynchronous_runs(tmp_path):
    out = _script("active_vision.py", "--json", str(tmp_path / "a.json"), "overhead", "--data",
                  str(data_path("mnist5k.npz")), "--batches", "8", "--glimpses", "8", "--min-events", "6",
                  "--repeats", "1")
    assert out.returncode == 0, out.stderr
    row = json.loads((tmp_path / "a_overhead.json").read_text())["rows"][0]
    assert row["max |dW|"] == 0 and row["events"] == 6 and 0 < row["eyes/event"] <= 8
