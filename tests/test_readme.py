"""The README's simulation script runs as printed (shorter, on the shared data, writing into a temporary folder)."""
import json
import re
from pathlib import Path

from conftest import data_path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_simulation_script_runs(tmp_path, monkeypatch, capsys):
    text = README.read_text()
    script = re.search(r"## The Python API\n\n```python\n(.*?)```", text, re.S).group(1)
    for old, new in (("../shared/data/mnist5k.npz", str(data_path("mnist5k.npz"))), ('"events": 2000', '"events": 150')):
        assert old in script, old
        script = script.replace(old, new)
    monkeypatch.chdir(tmp_path)
    exec(compile(script, str(README), "exec"), {})
    printed = capsys.readouterr().out
    assert "'layers'" in printed and "'baselines'" in printed
    results = json.loads((tmp_path / "runs" / "instar-mnist" / "results.json").read_text())
    assert results["rule"] == "instar" and results["events"] == 150
    assert set(results["probe"]["layers"]) == {"layer1", "layer2"}
