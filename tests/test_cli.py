"""The CLI end to end on the shared real images: outputs, the probe table, determinism, clear errors."""
import json


from saccade_sim.cli import main
from saccade_sim.experiment import TIMING_FIELDS
from conftest import data_path


def run_cli(args, capsys):
    rc = main(args)
    out = capsys.readouterr()
    return rc, out.out, out.err


def small(source, *extra):
    return ["--quiet", "--set", f"data.source={source}", "--set", "run.events=40", "--set", "eye.batch=8",
            "--set", "probe.train=200", "--set", "probe.test=100", "--set", "network.preset=tiny", *extra]


def load_results(out):
    return json.loads((out / "results.json").read_text())


def test_run_on_mnist5k_writes_the_output_contract(tmp_path, capsys):
    out = tmp_path / "run"
    rc, stdout, _ = run_cli(["run", *small(str(data_path("mnist5k.npz")), "--set", "rule.name=instar"),
                             "--out", str(out)], capsys)
    assert rc == 0
    assert "input (raw glimpses)" in stdout and "layer1" in stdout
    for name in ("config.json", "results.json", "checkpoint.pt", "learning_curve.png", "history.npz"):
        assert (out / name).stat().st_size > 0
    r = load_results(out)
    for key in ("rule", "modality", "dataset", "seed", "device", "events", "glimpses", "sim_time_ms", "wall_s"):
        assert key in r
    assert r["events"] == 40 and r["glimpses"] == 320 and r["sim_time_ms"] == 40 * 200.0
    accs = [r["probe"]["baselines"]["input"], *r["probe"]["layers"].values(), *r["probe"]["baselines"]["random"].values()]
    assert all(0.0 <= a <= 1.0 for a in accs)
    assert r["probe"]["baselines"]["input"] > 0.5  # raw MNIST pixels are linearly decodable
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["rule"]["name"] == "instar" and cfg["glimpse"]["patch"] == 16 and "form" in cfg["rule"]


def test_same_config_and_seed_give_the_same_results(tmp_path, capsys):
    outs = []
    for i in range(2):
        out = tmp_path / f"r{i}"
        assert run_cli(["run", *small(str(data_path("natural"))), "--out", str(out)], capsys)[0] == 0
        r = load_results(out)
        outs.append({k: v for k, v in r.items() if k not in TIMING_FIELDS})
    assert outs[0] == outs[1]


def test_refuses_to_overwrite_another_run_and_names_bad_values(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "results.json").write_text("{}")
    rc, _, err = run_cli(["run", "--set", "run.events=1", "--out", str(out)], capsys)
    assert rc == 2 and "not empty" in err
    rc, _, err = run_cli(["run", "--set", "rule.name=nope", "--out", str(tmp_path / "x")], capsys)
    assert rc == 2 and "rule.name: unknown rule 'nope'" in err
    rc, _, err = run_cli(["run", "--set", f"data.source={tmp_path / 'missing.npz'}", "--out", str(tmp_path / "y")], capsys)
    assert rc == 2 and "missing.npz" in err


def test_list_shows_every_registry(capsys):
    rc, stdout, _ = run_cli(["list"], capsys)
    assert rc == 0
    for word in ("modalities:", "image", "policies:", "raster", "random", "rules:", "oja", "instar", "hebb",
                 "datasets:", "natural", "vgg6"):
        assert word in stdout
