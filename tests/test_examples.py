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


def _run(script, *args, cwd=ROOT):
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / script), *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_custom_modality_tutorial_reads_digits_in_strips(tmp_path):
    out = _run("custom_modality.py", "--data", data_path("mnist5k.npz"), "--events", "20", "--out", tmp_path / "run")
    assert "8 strips of (1, 6, 28) per image" in out  # rows 0, 3, ..., 21 of 28 and "layer1" in out
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["data"]["modality"] == "strips" and config["glimpse"] == {"rows": 6, "stride": 3}


def test_analyse_run_tutorial_writes_the_report_and_its_own_table(tmp_path):
    out = _run("analyse_run.py", "--data", data_path("mnist5k.npz"), "--events", "20", "--stimuli", "30",
               "--out", tmp_path / "run")
    assert (tmp_path / "run" / "report.md").exists() and (tmp_path / "run" / "analysis.json").exists()
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("representation"))
    assert [line.split()[0] for line in lines[head + 1:head + 4]] == ["input", "layer1", "layer2"]
    assert "(random " in lines[head + 2]


def test_sweep_tutorial_prints_the_table_and_the_best_setting(tmp_path):
    out = _run("sweep.py", "--data", data_path("mnist5k.npz"), "--events", "10", "--seeds", "1", "--out",
               tmp_path / "sweep")
    assert out.count("| rule.name=") == 4 and "largest gain over random weights: rule.name=" in out
    assert len((tmp_path / "sweep" / "runs.csv").read_text().splitlines()) == 1 + 4
