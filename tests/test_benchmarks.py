"""The CLAPP learning-curve and Hebbian reproduction benchmarks run from one command, and runs of separate seeds
merge into one table."""
import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import data_path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = str(ROOT / "benchmarks" / "clapp_curve.py")


def _curve(*args: str) -> str:
    proc = subprocess.run([sys.executable, SCRIPT, "--threads", "2", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_clapp_curve_probes_each_budget_and_merges_seeds_with_paired_gains(tmp_path):
    small = ["--config", "default", "--budgets", "10", "20", "--set", f"data.source={data_path('mnist5k.npz')}",
             "--set", "probe.train=60", "--set", "probe.test=40", "--set", "network.layers=[{channels=4, pool=2}]"]
    halves = []
    for seed in ("0", "1"):
        halves.append(tmp_path / f"seed{seed}.json")
        out = _curve(*small, "--seeds", seed, "--json", str(halves[-1]))
        assert f"seed {seed} events 10: layer1" in out and f"seed {seed} events 20: layer1" in out
        assert "/1 above)" in out
    merged = _curve("--merge", *map(str, halves))
    runs = sorted((json.loads(h.read_text())["runs"][0] for h in halves), key=lambda r: r["seed"])
    assert [r["seed"] for r in runs] == [0, 1] and [b["events"] for b in runs[0]["budgets"]] == [10, 20]
    gains = [r["budgets"][1]["layers"]["layer1"] - r["random"]["layer1"] for r in runs]
    row = next(line for line in merged.splitlines() if line.startswith("| 20 ") and "layer1" in line)
    above = sum(g > 0 for g in gains)
    mean, sd = sum(gains) / 2, abs(gains[0] - gains[1]) / 2 ** 0.5
    assert f"{mean:.3f} +- {sd:.3f} ({above}/2 above)" in row


def test_hebbian_reproduction_tables_from_per_seed_runs_and_curve(tmp_path):
    """Two seeds run as separate invocations merge into one per-layer table (trained, random twin, raw input,
    the paired gain and its seed count); the curve part probes during the run."""
    script = str(ROOT / "benchmarks" / "hebbian_reproduction.py")
    tiny = ["--set", "run.events=4", "--set", "probe.train=60", "--set", "probe.test=40",
            "--set", "eye.batch=16", "--set", "network.layers=[{channels=4, kernel=3, pool=2}, {channels=4, kernel=3}]"]

    def bench(*args: str) -> str:
        proc = subprocess.run([sys.executable, script, *args], capture_output=True, text=True, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=600)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    files = [tmp_path / f"s{seed}.json" for seed in (0, 1)]
    bench("--parts", "sphere", "curve", "--curve-config", "sphere", "--curve-events", "4", "--curve-every", "2",
          "--seeds", "0", *tiny, "--json", str(files[0]))
    bench("--parts", "sphere", "--seeds", "1", *tiny, "--json", str(files[1]))
    out = bench("--merge", *map(str, files), "--json", str(tmp_path / "all.json"))
    runs = json.loads((tmp_path / "all.json").read_text())["runs"]
    assert [r["seed"] for r in runs["sphere"]] == [0, 1]
    assert "sphere: configs/sphere.toml, 4 events x 16 images, 60/40 probe" in out and "2 seed(s)" in out
    gains = [r["probe"]["layers"]["layer2"] - r["probe"]["baselines"]["random"]["layer2"] for r in runs["sphere"]]
    row = next(line for line in out.splitlines() if line.startswith("| layer2 "))
    assert row.split("|")[4].split() == [f"{sum(gains) / 2:+.3f}", "+-", f"{abs(gains[0] - gains[1]) / 2 ** 0.5:.3f}",
                                         f"({sum(g > 0 for g in gains)}/2", "above)"]
    curve = out[out.index("curve: configs/sphere.toml"):].splitlines()
    rows = [line for line in curve[3:] if line.startswith("|")]
    assert [line.split("|")[1].strip() for line in rows] == ["2", "4"]
