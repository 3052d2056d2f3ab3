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
