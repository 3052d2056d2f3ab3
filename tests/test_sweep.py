"""Sweeps on the shared digits: the grid syntax, the table and the learning curve against an independent
computation from the run folders, resuming, refusing a folder of another configuration, the CLI, parallel
processes and submitit."""
import json
import statistics

import pytest

from saccade_sim.cli import main
from saccade_sim.errors import ConfigError
from saccade_sim.sweep import combinations, load_sweep, parse_grid, parse_seeds, run_sweep, split_values
from conftest import data_path

SMALL = {"run": {"events": 12}, "eye": {"batch": 8}, "probe": {"train": 80, "test": 50},
         "network": {"preset": "tiny"}, "rule": {"name": "instar"}}


def base():
    return {**SMALL, "data": {"source": str(data_path("mnist5k.npz"))}}


def test_grid_and_seed_syntax():
    assert split_values('1,[2,3],"a,b",{x=1,y=2}') == ["1", "[2,3]", '"a,b"', "{x=1,y=2}"]
    assert parse_grid(["rule.lr=0.01,0.1", "rule.name=oja"]) == [("rule.lr", [0.01, 0.1]), ("rule.name", ["oja"])]
    assert parse_grid(["network.layers=[{channels=4}],[{channels=8}]"])[0][1] == [[{"channels": 4}], [{"channels": 8}]]
    assert parse_seeds("0-3") == [0, 1, 2, 3] and parse_seeds("0,5") == [0, 5] and parse_seeds("7") == [7]
    for bad in ("a-b", "1,1"):
        with pytest.raises(ConfigError, match="--seeds"):
            parse_seeds(bad)
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_grid(["rule.lr"])
    combos = combinations({"a.x": [1, 2], "b.y": ["u", "v"]}, {"first": {"rule": {"name": "oja"}}})
    assert [label for label, _ in combos] == ["first, a.x=1, b.y=u", "first, a.x=1, b.y=v", "first, a.x=2, b.y=u",
                                              "first, a.x=2, b.y=v"]
    assert combos[0][1] == {"rule.name": "oja", "a.x": 1, "b.y": "u"}


def test_sweep_table_matches_the_run_folders_and_resumes(tmp_path):
    out = tmp_path / "sweep"
    lines = []
    table = run_sweep(base(), {"rule.lr": [0.01, 0.05]}, seeds=[0, 1], out=out, progress=False, echo=lines.append)
    assert table.count("done") == 4 and len(lines) == 4
    for lr in (0.01, 0.05):
        results = [json.loads((out / f"rule.lr={lr}" / f"seed{s}" / "results.json").read_text()) for s in (0, 1)]
        config = json.loads((out / f"rule.lr={lr}" / "seed1" / "config.json").read_text())
        assert config["seed"] == 1 and config["rule"]["lr"] == lr
        trained = [r["probe"]["layers"]["layer1"] for r in results]
        random = [r["probe"]["baselines"]["random"]["layer1"] for r in results]
        gains = [a - b for a, b in zip(trained, random)]
        row = table.row(f"rule.lr={lr}", "layer1")
        assert row["accuracy_mean"] == pytest.approx(statistics.fmean(trained))
        assert row["accuracy_sd"] == pytest.approx(statistics.stdev(trained))
        assert row["random_mean"] == pytest.approx(statistics.fmean(random))
        assert row["gain_mean"] == pytest.approx(statistics.fmean(gains))
        assert row["gain_sd"] == pytest.approx(statistics.stdev(gains))
        assert row["gain_above"] == sum(g > 0 for g in gains)
        assert table.row(f"rule.lr={lr}", "input")["accuracy_mean"] == pytest.approx(
            statistics.fmean(r["probe"]["baselines"]["input"] for r in results))
    csv_lines = (out / "table.csv").read_text().splitlines()
    assert csv_lines[0].startswith("combination,rule.lr,representation,seeds") and len(csv_lines) == 1 + 2 * 2
    assert len((out / "runs.csv").read_text().splitlines()) == 1 + 4
    md = (out / "table.md").read_text()
    assert "| rule.lr=0.01 | 2 |" in md and "/2 above)" in md

    first = (out / "rule.lr=0.05" / "seed1" / "results.json").read_text()
    (out / "rule.lr=0.01" / "seed0" / "results.json").unlink()  # as if killed before it finished
    again = run_sweep(base(), {"rule.lr": [0.01, 0.05]}, seeds=[0, 1], out=out, progress=False, echo=lambda s: None)
    assert again.count("skipped") == 3 and again.count("done") == 1
    assert (out / "rule.lr=0.05" / "seed1" / "results.json").read_text() == first  # not rerun
    assert load_sweep(out).rows == again.rows

    changed = {**base(), "probe": {"train": 60, "test": 50}}
    with pytest.raises(ConfigError, match="another configuration"):
        run_sweep(changed, {"rule.lr": [0.01]}, seeds=[0], out=out, progress=False, echo=lambda s: None)


def test_learning_curve_per_budget_matches_the_run_folders_and_survives_a_resume(tmp_path, capsys):
    """Probed during the runs every 4 events of 12: per combination and budget, each layer's trained accuracy
    (decoding.json; results.json at the end) against the same seeds' random twins, recomputed from the folders;
    the CLI resumes the sweep and prints the curve."""
    out, grid = tmp_path / "curve", {"rule.lr": [0.01, 0.05]}
    config = tmp_path / "exp.json"
    config.write_text(json.dumps({**base(), "probe": {**SMALL["probe"], "every_ms": 4 * 200.0}}))
    table = run_sweep(config, grid, seeds=[0, 1], out=out, progress=False, echo=lambda s: None)
    for lr in (0.01, 0.05):
        folders = [out / f"rule.lr={lr}" / f"seed{s}" for s in (0, 1)]
        results = [json.loads((f / "results.json").read_text()) for f in folders]
        decoding = [json.loads((f / "decoding.json").read_text()) for f in folders]
        assert [[p["event"] for p in d] for d in decoding] == [[4, 8, 12]] * 2
        for d, r in zip(decoding, results):  # the in-run probe at the end is the final probe
            assert d[-1]["layer1"] == r["probe"]["layers"]["layer1"]
        random = [r["probe"]["baselines"]["random"]["layer1"] for r in results]
        at = {0: random, **{p["event"]: [d[i]["layer1"] for d in decoding] for i, p in enumerate(decoding[0])}}
        for events, trained in at.items():
            gains = [t - b for t, b in zip(trained, random)]
            row = table.row(f"rule.lr={lr}", "layer1", events)
            assert row["seeds"] == 2 and row["rule.lr"] == lr
            assert row["accuracy_mean"] == pytest.approx(statistics.fmean(trained))
            assert row["accuracy_sd"] == pytest.approx(statistics.stdev(trained))
            assert row["random_mean"] == pytest.approx(statistics.fmean(random))
            assert row["random_sd"] == pytest.approx(statistics.stdev(random))
            assert row["gain_mean"] == pytest.approx(statistics.fmean(gains))
            assert row["gain_sd"] == pytest.approx(statistics.stdev(gains))
            assert row["gain_above"] == sum(g > 0 for g in gains)
        assert table.row(f"rule.lr={lr}", "input", 0)["accuracy_mean"] == pytest.approx(
            statistics.fmean(r["probe"]["baselines"]["input"] for r in results))
    assert [(r["events"], r["representation"]) for r in table.curve[:5]] == [
        (0, "input"), (0, "layer1"), (4, "layer1"), (8, "layer1"), (12, "layer1")] and len(table.curve) == 10
    lines = (out / "curve.csv").read_text().splitlines()
    assert lines[0].startswith("combination,rule.lr,events,representation,seeds,accuracy_mean") and len(lines) == 11
    assert "| rule.lr=0.05 | 8 | layer1 | 2 |" in (out / "curve.md").read_text()

    (out / "rule.lr=0.01" / "seed1" / "results.json").unlink()  # as if killed before it finished
    kept = (out / "rule.lr=0.05" / "seed0" / "decoding.json").stat().st_mtime_ns
    capsys.readouterr()
    assert main(["sweep", str(config), "--quiet", "--out", str(out), "--grid", "rule.lr=0.01,0.05",
                 "--seeds", "0-1"]) == 0
    printed = capsys.readouterr().out
    assert "1 done now, 3 finished before" in printed and "| rule.lr=0.01 | 12 | layer1 | 2 |" in printed
    assert (out / "rule.lr=0.05" / "seed0" / "decoding.json").stat().st_mtime_ns == kept
    assert load_sweep(out).curve == table.curve


def test_bad_grid_value_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(ConfigError, match="combination 'rule.optimizer=nope', seed 0: rule.optimizer"):
        run_sweep(base(), {"rule.optimizer": ["sgd", "nope"]}, seeds=[0], out=tmp_path / "s", progress=False)
    assert not (tmp_path / "s" / "rule.optimizer=sgd").exists()


def test_cli_sweep_in_two_processes_then_nothing_left_to_do(tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["sweep", "--quiet", "--out", str(out), "--grid", "rule.name=oja,instar", "--seeds", "0", "--jobs", "2",
            "--set", f"data.source={data_path('mnist5k.npz')}", "--set", "run.events=12", "--set", "eye.batch=8",
            "--set", "probe.train=80", "--set", "probe.test=50", "--set", "network.preset=tiny"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "2 done now" in printed and "| rule.name=oja | 1 |" in printed
    provenance = json.loads((out / "rule.name=oja" / "seed0" / "results.json").read_text())["provenance"]
    assert provenance["torch_threads"] == 1  # one torch thread per parallel job by default
    assert main(args) == 0
    assert "0 done now, 2 finished before" in capsys.readouterr().out


def test_submitit_local_executor_runs_the_jobs(tmp_path):
    table = run_sweep(base(), {"rule.name": ["oja"]}, seeds=[0], out=tmp_path / "s", executor="submitit-local",
                      progress=False, echo=lambda s: None)
    assert table.count("done") == 1, [r.error for r in table.runs]
    assert (tmp_path / "s" / "submitit").is_dir()
    assert (tmp_path / "s" / "rule.name=oja" / "seed0" / "results.json").exists()
