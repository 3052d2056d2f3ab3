import os
from pathlib import Path

import pytest
import torch

#: The shared real data (``../shared/data`` beside the repository); SACCADE_SIM_DATA overrides it.
DATA = Path(os.environ.get("SACCADE_SIM_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def data_path(name: str) -> Path:
    path = DATA / name
    if not path.exists():
        pytest.fail(f"shared test data missing: {path} (set SACCADE_SIM_DATA)")
    return path


def pytest_collection_modifyitems(config, items):
    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs CUDA")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(2)
    yield


ROOT = Path(__file__).resolve().parents[1]


def cli_process(args, **popen):
    """``python -m saccade_sim ARGS`` as a separate process (2 torch threads), stdout/stderr piped as text."""
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "2"}
    return subprocess.Popen([sys.executable, "-m", "saccade_sim", *map(str, args)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def run_and_resumed_run(cfg: dict, stop_at: int, folder: Path):
    """The uninterrupted run of ``cfg`` and the same run stopped after ``stop_at`` events, checkpointed into
    ``folder``, resumed and finished; the caller compares them. Returns (uninterrupted, resumed)."""
    from saccade_sim import io
    from saccade_sim.checkpoint import resume
    from saccade_sim.experiment import Experiment

    reference = Experiment(cfg)
    reference.simulate()
    first = Experiment(cfg)
    first.simulate(stop_at)
    io.save_torch(folder / "checkpoint.pt", first.state_dict())
    resumed = resume(folder)
    resumed.simulate()
    for a, b in zip(reference.agents, resumed.agents):
        assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    return reference, resumed
