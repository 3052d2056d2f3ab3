"""The example scripts run as users run them."""
import json
import subprocess
import sys
from pathlib import Path

from conftest import data_path

ROOT = Path(__file__).resolve().parents[1]


def test_custom_rule_example_runs_on_real_digits(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "custom_rule.py"), "--data",
                           str(data_path("mnist5k.npz")), "--events", "30", "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "layer2" in proc.stdout
    results = json.loads((out / "results.json").read_text())
    assert results["rule"] == "gated_hebb" and results["events"] == 30
    config = json.loads((out / "config.json").read_text())
    assert config["eye"]["policy"] == "centre_out" and config["rule"]["decay"] == 1.0
