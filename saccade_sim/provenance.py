"""Where a result came from: the code, the software stack, the machine, the date and the command line
(torch is imported only when a record is made).

``results.json`` carries :func:`collect`'s record under ``provenance``, so that a table built from run
folders can say which code and which torch produced each figure.
"""
from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .version import __version__

COMMAND_VARIABLE = "SACCADE_SIM_COMMAND"
SOURCE = Path(__file__).resolve().parent  #: the package's own folder (a git work tree in a developer install)


def git_commit(folder: Path = SOURCE) -> dict[str, Any] | None:
    """``{"commit": sha, "dirty": bool}`` of the git work tree holding ``folder``; None outside one (an installed
    wheel) or without git."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty}


def cpu_name() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``), else what :mod:`platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device) -> str:
    """``'NVIDIA H200'`` for a CUDA device, the CPU model with its core count for the CPU."""
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_name()} ({os.cpu_count()} cores)"


def collect(device) -> dict[str, Any]:
    """Version, git commit, Python / torch / CUDA / cuDNN versions, device (a ``torch.device``), threads, date
    (UTC), command line."""
    import torch

    git = git_commit()
    return {
        "saccade_sim": __version__,
        "git_commit": git["commit"] if git else None,
        "git_dirty": git["dirty"] if git else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "platform": platform.platform(),
        "device_name": device_name(device),
        "torch_threads": torch.get_num_threads(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": command(),
    }


def command() -> str:
    """The command line: what the CLI put in ``$SACCADE_SIM_COMMAND`` while it runs (inherited by sweep
    workers), else this process's ``sys.argv``."""
    if os.environ.get(COMMAND_VARIABLE):
        return os.environ[COMMAND_VARIABLE]
    return shlex.join([Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python", *sys.argv[1:]])


def version_line() -> str:
    """What ``saccade-sim --version`` prints: this package's version and the stack it runs on."""
    import torch

    cuda = (f"CUDA {torch.version.cuda}, {torch.cuda.device_count()} GPU(s) visible" if torch.cuda.is_available()
            else f"CUDA {'build ' + torch.version.cuda + ', no GPU visible' if torch.version.cuda else 'none (CPU build)'}")
    return f"saccade-sim {__version__} (torch {torch.__version__}, {cuda}; Python {platform.python_version()})"
