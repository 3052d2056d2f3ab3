"""What an installer sees: one version everywhere, the licence, the torch check and its one-line error."""
import re
import subprocess
import sys
from saccade_sim.config import tomllib  # tomli on Python 3.10
from pathlib import Path

import pytest

import saccade_sim
from saccade_sim import compat
from saccade_sim.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_version_licence_and_citation_agree():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT" and (ROOT / "LICENSE").read_text().startswith("MIT License")
    citation = (ROOT / "CITATION.cff").read_text()
    assert re.search(r"^version: (\S+)$", citation, re.M).group(1) == saccade_sim.__version__
    assert "license: MIT" in citation
    assert all((ROOT / page).exists() for page in re.findall(r"docs/[\w/]+\.md", citation))  # its references
    from importlib.metadata import version

    assert version("saccade-sim") == saccade_sim.__version__
    pins = dict(line.split("==") for line in (ROOT / "constraints.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    compat.check_version(pins["torch"])  # the tested torch is in the supported range
    assert f"torch>={compat.TORCH_RANGE[0][0]}.{compat.TORCH_RANGE[0][1]},<{compat.TORCH_RANGE[1][0]}." \
           f"{compat.TORCH_RANGE[1][1]}" in project["dependencies"]


@pytest.mark.parametrize("version, ok", [("2.11.0", True), ("2.11.0+cu128", True), ("2.11.1", True),
                                         ("2.10.0", False), ("2.12.0", False), ("1.13.1", False)])
def test_torch_versions(version, ok):
    if ok:
        compat.check_version(version)
    else:
        with pytest.raises(compat.UnusableTorch, match=f"this environment has torch {re.escape(version)}"):
            compat.check_version(version)


def test_an_unusable_torch_is_one_line_and_status_2(monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch, "__version__", "2.9.0")
    assert main(["list"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "needs torch >= 2.11, < 2.12" in err and "torch 2.9.0" in err


def test_importing_the_package_and_its_cli_does_not_import_torch():
    code = "import saccade_sim, saccade_sim.cli, sys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
