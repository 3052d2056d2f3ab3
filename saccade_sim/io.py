"""Crash-safe output: every file is written to a temporary sibling, flushed, then renamed over."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` then atomically rename ``tmp`` to ``path`` (a kill leaves the old file)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_json(path: Path, data: Any) -> None:
    atomic_write(path, lambda p: p.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n"))


def save_npz(path: Path, arrays: dict[str, Any]) -> None:
    def write(p: Path) -> None:
        with open(p, "wb") as f:
            np.savez(f, **arrays)

    atomic_write(path, write)


def save_torch(path: Path, data: Any) -> None:
    atomic_write(path, lambda p: torch.save(data, p))


def load_torch(path: Path) -> Any:
    """Load a checkpoint with ``weights_only`` (tensors and plain containers only; no code runs)."""
    return torch.load(path, map_location="cpu", weights_only=True)
