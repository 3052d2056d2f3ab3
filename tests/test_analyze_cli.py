"""``saccade-sim analyze`` on a short real run over the shared natural images."""
import json

import numpy as np

from saccade_sim.cli import main
from conftest import data_path

LAYERS = '[{kind="conv", channels=8, kernel=8, padding=0, pool=2}, {kind="conv", channels=8, kernel=3}]'
PLOTS = ("receptive_fields_layer1", "receptive_fields_layer2", "decoding_curve", "similarity", "population",
         "scan_path")


def test_analyze_writes_every_plot_its_data_and_an_index(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["run", "--quiet", "--out", str(out), "--set", f"data.source={data_path('natural')}",
            "--set", "glimpse.color=gray", "--set", f"network.layers={LAYERS}", "--set", "eye.batch=8",
            "--set", "run.events=20", "--set", "run.check_every=5", "--set", "probe.every_ms=2000",
            "--set", "probe.train=60", "--set", "probe.test=40", "--set", "data.crops_per_photo=20",
            "--set", "rule.name=instar", "--set", "rule.competition=kwta",
            "--set", 'record.monitors=[{target="eye", quantity="gaze", max_len=50}]']
    assert main(args) == 0
    assert main(["analyze", str(out), "--stimuli", "24", "--max-units", "4"]) == 0
    stdout = capsys.readouterr().out
    assert "layer1 weights [1, 8, 8]: mean Gabor R2" in stdout
    assert "layer2 response-weighted average glimpses minus the mean glimpse [1, 16, 16]: not fitted" in stdout
    report = (out / "report.md").read_text()
    for stem in PLOTS:
        assert (out / f"{stem}.png").read_bytes()[:4] == b"\x89PNG", stem
        assert (out / f"{stem}.npz").stat().st_size > 0
        assert f"![{stem}]({stem}.png)" in report  # embedded, not only linked
    assert "![learning curve](learning_curve.png)" in report
    results = json.loads((out / "results.json").read_text())
    assert f"layer1                {results['probe']['layers']['layer1']:.3f}" in report  # the probe table
    assert "| rule | name = instar," in report and 'root = "",' in report and "## Provenance" in report
    curve = np.load(out / "decoding_curve.npz")
    assert curve["layer1_time_s"].tolist() == [0.0, 2.0, 4.0]  # random weights at t = 0, the in-run probes
    assert curve["layer1_accuracy"][0] == results["probe"]["baselines"]["random"]["layer1"]
    assert curve["layer1_accuracy"][-1] == results["probe"]["layers"]["layer1"]  # the probe at the end (4 s)
    scan = np.load(out / "scan_path.npz")
    assert scan["gaze"].shape[1] == 2 and len(scan["gaze"]) >= 2
    summary = json.loads((out / "analysis.json").read_text())
    assert set(summary["layers"]) == {"layer1", "layer2"} and summary["stimuli"] == 24
    layer1 = summary["layers"]["layer1"]
    assert 0 <= layer1["osi"][0] <= 1 and layer1["gabor_r2"][0] <= 1
    assert summary["layers"]["layer2"]["gabor_r2"] == [None, None]
    assert 0 <= layer1["trained_lifetime_sparseness"] <= 1 and layer1["trained_participation_ratio"] >= 1
    names = summary["rsa"]["names"]
    assert names == ["input", "layer1", "layer2", "labels"]
    assert all(summary["rsa"]["matrix"][i][i] == 1 for i in range(len(names)))
    assert len(json.loads((out / "decoding.json").read_text())) == 2  # probes at 2 s and 4 s


def test_analyze_a_spectrogram_run_draws_time_and_mel_axes_and_fits_no_orientation(tmp_path, capsys):
    out = tmp_path / "audio"
    assert main(["run", "--quiet", "--out", str(out), "--set", "data.modality=audio",
                 "--set", f"data.source={data_path('fsdd')}", "--set", "data.train_limit=120",
                 "--set", "data.test_limit=40", "--set", "eye.batch=8", "--set", "run.events=10",
                 "--set", "network.preset=tiny", "--set", "probe.train=60", "--set", "probe.test=40",
                 "--set", "rule.name=oja"]) == 0
    assert main(["analyze", str(out), "--stimuli", "20", "--quiet"]) == 0
    assert "layer1 weights [1, 3, 3]: not fitted: a time x mel-band field has no visual orientation" in \
        capsys.readouterr().out
    summary = json.loads((out / "analysis.json").read_text())
    assert summary["layers"]["layer1"]["osi"] == [None, None]
    scan = np.load(out / "scan_path.npz")
    assert scan["box"].tolist() == [40, 16]  # a window of all 40 mel bands x 16 frames
    assert "orientation selectivity not computed: a time x mel-band field" in (out / "report.md").read_text()
