"""Runs that explain themselves: provenance, absolute data paths, re-running a run folder's config.json,
analyze from any directory, --version, and glimpses_per_s without the probes."""
import json
import subprocess
import sys
import time

import saccade_sim
from saccade_sim.cli import main
from saccade_sim.experiment import TIMING_FIELDS, Experiment
from conftest import data_path

TINY = ["--quiet", "--set", "run.events=20", "--set", "eye.batch=8", "--set", "probe.train=80", "--set",
        "probe.test=50", "--set", "network.preset=tiny", "--set", "rule.name=instar"]


def test_results_carry_provenance_and_absolute_paths(tmp_path, monkeypatch, capsys):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "digits.npz").write_bytes(data_path("digits8x8.npz").read_bytes())
    monkeypatch.chdir(tmp_path)
    assert main(["run", *TINY, "--set", "data.source=data/digits.npz", "--set", "glimpse.patch=4",
                 "--out", "runs/a"]) == 0
    results = json.loads((tmp_path / "runs/a/results.json").read_text())
    prov = results["provenance"]
    assert prov["saccade_sim"] == saccade_sim.__version__
    assert prov["torch"] and prov["python"] and prov["device_name"] and prov["date"].endswith("Z")
    assert "data.source=data/digits.npz" in prov["command"] and "torch_threads" in prov
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                            cwd=saccade_sim.__path__[0]).stdout.strip()
    assert prov["git_commit"] == (commit or None)
    config = json.loads((tmp_path / "runs/a/config.json").read_text())
    assert config["data"]["source"] == str(tmp_path / "data" / "digits.npz")

    # from another directory: analyze finds the data, and the saved config.json re-runs the same run
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["analyze", str(tmp_path / "runs/a"), "--stimuli", "20", "--max-units", "2", "--quiet"]) == 0
    assert main(["run", str(tmp_path / "runs/a/config.json"), "--out", "again"]) == 0
    again = json.loads((elsewhere / "again/results.json").read_text())
    assert {k: v for k, v in again.items() if k not in TIMING_FIELDS} == \
        {k: v for k, v in results.items() if k not in TIMING_FIELDS}
    capsys.readouterr()
    assert main(["run", str(tmp_path / "runs"), "--out", "x"]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_version_names_the_stack():
    proc = subprocess.run([sys.executable, "-m", "saccade_sim", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0
    import torch

    assert proc.stdout.startswith(f"saccade-sim {saccade_sim.__version__} (torch {torch.__version__}")


def test_glimpses_per_s_excludes_the_in_run_probes(monkeypatch):
    exp = Experiment({"data": {"source": str(data_path("digits8x8.npz"))}, "glimpse": {"patch": 4},
                      "network": {"preset": "tiny"}, "run": {"events": 20, "progress": False},
                      "probe": {"train": 60, "test": 40, "every_ms": 1000.0}})
    scores = exp.probe_scores

    def slow_scores(*args, **kwargs):
        time.sleep(0.25)
        return scores(*args, **kwargs)

    monkeypatch.setattr(exp, "probe_scores", slow_scores)
    start = time.perf_counter()
    exp.simulate()
    total = time.perf_counter() - start
    assert len(exp.decoding) == 4 and exp.decoding_wall_s >= 4 * 0.25
    assert exp.wall_s < total - 4 * 0.25 + 0.05  # the probes' time is not simulation time
    results = exp.run()
    assert results["glimpses_per_s"] == results["glimpses"] / results["wall_s"]
    assert results["decoding_wall_s"] == exp.decoding_wall_s
