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
