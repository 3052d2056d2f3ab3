"""The CLAPP learning-curve benchmark runs from one command, and runs of separate seeds merge into one table."""
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
