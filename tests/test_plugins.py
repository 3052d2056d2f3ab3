"""Out-of-tree plugins: a package that saccade-sim does not import, found through its entry points only."""
import json
import shutil
from pathlib import Path

from saccade_sim.cli import main
from saccade_sim.registry import DATASETS, MODALITIES

PLUGIN = Path(__file__).parent / "plugin_data" / "bars_plugin" / "bars_plugin.py"


def install(site: Path) -> None:
    """What ``pip install --target site`` leaves for a wheel with entry points: the module and a dist-info."""
    site.mkdir()
    shutil.copy(PLUGIN, site)
    info = site / "bars_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: bars-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[saccade_sim.modalities]\nrows = bars_plugin:RowsModality\n\n"
                                           "[saccade_sim.datasets]\nbars = bars_plugin:bars\n")


def test_an_installed_modality_plugin_runs_through_the_cli(tmp_path, monkeypatch, capsys):
    site = tmp_path / "site"
    install(site)
    monkeypatch.syspath_prepend(str(site))  # as if installed: importlib.metadata now sees its entry points
    for registry in (MODALITIES, DATASETS):  # forget earlier look-ups; drop the plugin again afterwards
        monkeypatch.setattr(registry, "_items", dict(registry._items))
        monkeypatch.setattr(registry, "_loaded_entry_points", False)
    assert main(["list"]) == 0
    listed = capsys.readouterr().out
    assert "rows           Grey images; a glimpse is a band" in listed and "bars           A bright" in listed
    out = tmp_path / "run"
    rc = main(["run", "--quiet", "--out", str(out), "--set", "data.modality=rows", "--set", "data.source=bars",
               "--set", "glimpse.rows=4", "--set", "network.preset=dense", "--set", "rule.name=oja",
               "--set", "run.events=30", "--set", "eye.batch=8"])
    assert rc == 0 and "layer1" in capsys.readouterr().out
    r = json.loads((out / "results.json").read_text())
    assert r["modality"] == "rows" and r["classes"] == ["top", "bottom"] and r["events"] == 30
    assert r["probe"]["baselines"]["input"] > 0.8  # where the bar is: linear in the rows
    assert json.loads((out / "config.json").read_text())["glimpse"] == {"rows": 4}
    assert main(["run", "--set", "data.modality=rows", "--set", "glimpse.rowz=4", "--out", str(tmp_path / "x")]) == 2
    assert "unknown key glimpse.rowz; valid keys in [glimpse]: rows" in capsys.readouterr().err
