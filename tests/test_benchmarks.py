"""The benchmark that reproduces the README's CLAPP table runs from one command, and its parallel halves merge."""
import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import data_path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = str(ROOT / "benchmarks" / "clapp_table.py")


def _table(*args: str) -> str:
    proc = subprocess.run([sys.executable, SCRIPT, "--threads", "2", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_clapp_table_runs_per_rule_and_merges_with_paired_gains(tmp_path):
    small = ["--data", str(data_path("mnist5k.npz")), "--seeds", "0", "1", "--glimpses", "20", "--probe", "60", "40",
             "--set", "network.layers=[{channels=4, pool=2}]"]
    halves = []
    for rule in ("clapp", "clapp_s"):
        halves.append(tmp_path / f"{rule}.json")
        out = _table(*small, "--rules", rule, "--json", str(halves[-1]))
        assert "20 events x 16 eyes" in out and "layer1 - random (paired)" in out and "/2 above)" in out
    merged = tmp_path / "merged.json"
    out = _table("--merge", *map(str, halves), "--json", str(merged))
    header = next(line for line in out.splitlines() if line.startswith("representation"))
    assert header.split() == ["representation", "random", "weights", "clapp", "clapp_s"]
    runs = json.loads(merged.read_text())["runs"]
    assert [r["seed"] for r in runs["clapp"]] == [0, 1] and len(runs["clapp_s"]) == 2
    gains = [r["probe"]["layers"]["layer1"] - r["probe"]["baselines"]["random"]["layer1"] for r in runs["clapp"]]
    row = next(line for line in out.splitlines() if line.startswith("layer1 - random"))
    above = sum(g > 0 for g in gains)
    assert row.split()[4:8] == [f"{sum(gains) / 2:+.3f}", "+-", f"{abs(gains[0] - gains[1]) / 2 ** 0.5:.3f}",
                                f"({above}/2"]


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
