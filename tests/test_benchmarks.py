"""The benchmark that reproduces the CLAPP results table runs from one command through a sweep; invocations
with different rules share its run folders and a last one prints the joint table from them."""
import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import data_path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = str(ROOT / "benchmarks" / "clapp_table.py")


def _table(*args: str) -> str:
    proc = subprocess.run([sys.executable, SCRIPT, "--threads", "1", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_clapp_table_runs_per_rule_then_reuses_the_run_folders_for_the_joint_table(tmp_path):
    runs = tmp_path / "runs"
    small = ["--data", str(data_path("mnist5k.npz")), "--seeds", "0-1", "--events", "20", "--probe", "60", "40",
             "--set", "network.layers=[{channels=4, pool=2}]", "--runs", str(runs)]
    for rule in ("clapp", "clapp_s"):
        out = _table(*small, "--rules", rule, "--json", str(tmp_path / f"{rule}.json"))
        assert f"done {rule} seed 1" in out and "layer1 - random (paired)" in out and "/2 above)" in out
    out = _table(*small, "--json", str(tmp_path / "joint.json"))
    assert "done " not in out  # every run was finished: nothing ran again
    header = next(line for line in out.splitlines() if line.startswith("representation"))
    assert header.split() == ["representation", "random", "weights", "clapp", "clapp_s"]
    results = [json.loads((runs / "clapp" / f"seed{s}" / "results.json").read_text()) for s in (0, 1)]
    gains = [r["probe"]["layers"]["layer1"] - r["probe"]["baselines"]["random"]["layer1"] for r in results]
    row = next(line for line in out.splitlines() if line.startswith("layer1 - random"))
    above = sum(g > 0 for g in gains)
    assert row.split()[4:8] == [f"{sum(gains) / 2:+.3f}", "+-", f"{abs(gains[0] - gains[1]) / 2 ** 0.5:.3f}",
                                f"({above}/2"]
    rows = json.loads((tmp_path / "joint.json").read_text())["rows"]
    assert {(r["combination"], r["representation"]) for r in rows} >= {("clapp_s", "layer1"), ("clapp", "input")}
