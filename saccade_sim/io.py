"""Crash-safe output: every file is written to a temporary sibling, flushed, then renamed over.

A kill at any moment leaves either the old file or the new one, never a partial file under the real
name. The temporary name is unique per writer (``.NAME.PID-RANDOM.tmp``), so two writers never share one.
A write the system refuses (permissions, a full disk, a file in the way) raises :class:`OutputError`
naming the file, and leaves the old file. Loading never executes code from a file: checkpoints use
``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import json
import os
import pickle
import secrets
import warnings
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .errors import DataError, OutputError


#: glob of the temporary files :func:`atomic_write` creates (left behind only by a killed writer)
TEMPORARY = ".*.tmp"


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` then atomically rename ``tmp`` to ``path`` (a kill leaves the old file).

    An ``OSError`` on the way (also one that torch wraps) becomes :class:`OutputError` naming ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        cause = os_error(exc)
        if cause is not None:
            kept = "the previous file is kept" if path.exists() else "nothing was written"
            raise OutputError(f"{path}: cannot write: {cause.strerror or cause}; {kept}") from None
        raise
    _fsync_dir(path.parent)


def os_error(exc: BaseException) -> OSError | None:
    """``exc`` if it is an OSError, or the OSError a torch RuntimeError was raised while handling (torch
    reports a failed write to a Python file that way); else None."""
    if isinstance(exc, OSError):
        return exc
    if isinstance(exc, RuntimeError) and isinstance(exc.__context__, OSError):
        return exc.__context__
    return None


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX; a no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_json(path: Path, data: Any) -> None:
    atomic_write(path, lambda p: p.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n"))


def save_npz(path: Path, arrays: dict[str, Any]) -> None:
    def write(p: Path) -> None:
        with open(p, "wb") as f:
            np.savez(f, **arrays)

    atomic_write(path, write)


def save_torch(path: Path, data: Any) -> None:
    def write(p: Path) -> None:
        with open(p, "wb") as f:  # a Python file: a failed write keeps its OSError (torch's own writer drops it)
            torch.save(data, f)

    atomic_write(path, write)


def load_torch(path: Path) -> Any:
    """Load a checkpoint with ``weights_only`` (tensors and plain containers only; no code runs).

    A missing, truncated or foreign file, or one whose pickle asks to build anything but tensors and plain
    containers, raises :class:`DataError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no checkpoint here")
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickle protocols before refusing them
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise DataError(f"{path}: refused to load: not a plain checkpoint of tensors and containers "
                        f"(weights_only: {_unpickling_reason(exc)}); nothing from it was executed") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from None


def _unpickling_reason(exc: Exception) -> str:
    """The informative line of torch's weights_only error, without its boilerplate."""
    boilerplate = ("Weights only load failed", "Check the documentation", "Please file an issue")
    lines = [ln.strip() for ln in str(exc).splitlines()]
    reason = [ln for ln in lines if ln and not ln.startswith(boilerplate)]
    return " ".join(reason) or type(exc).__name__
