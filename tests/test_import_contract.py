"""The import contract: the layers of tests/import_graph.py hold, no part imports another, no cycle."""
from pathlib import Path

import pytest

import import_graph as ig

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def arrows():
    return ig.graph(ROOT)


def test_every_module_is_in_a_layer(arrows):
    unlisted = [m for m in arrows if ig.layer_of(m) is None]
    assert not unlisted, f"add these modules to a layer of tests/import_graph.py: {unlisted}"


def test_layers_and_forbidden_imports_hold(arrows):
    assert ig.violations(arrows) == []


def test_no_import_cycle(arrows):
    assert ig.cycles(arrows) == []


def test_the_core_imports_nothing_else_of_the_project(arrows):
    core = [m for m in arrows if ig.layer_of(m)[1] == "core"]
    outside = {f"{m} -> {t}" for m in core for t in arrows[m] if ig.layer_of(t)[1] != "core"}
    assert len(core) >= 6 and not outside


def test_the_graph_sees_a_reversed_import_and_a_cycle(tmp_path):
    """The checker itself: a core module importing the experiment is upward and closes a cycle."""
    for package in ig.PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "saccade_sim" / "events.py").write_text("from . import experiment\n")
    (tmp_path / "saccade_sim" / "experiment.py").write_text(
        "from .events import Glimpse\nif TYPE_CHECKING:\n    from agents import x\n")
    arrows = ig.graph(tmp_path)
    assert arrows["saccade_sim.events"] == {"saccade_sim.experiment"}
    assert arrows["saccade_sim.experiment"] == {"saccade_sim.events"}  # the TYPE_CHECKING import is not an arrow
    assert ig.cycles(arrows) == [["saccade_sim.events", "saccade_sim.experiment"]]
    assert ig.violations(arrows) == ["saccade_sim.events -> saccade_sim.experiment: upward (core imports experiment)"]
