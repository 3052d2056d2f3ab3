"""A run folder: the one list of what saccade-sim writes into it, and one writer at a time.

:data:`OUTPUTS` names (as glob patterns) every file a run and ``saccade-sim analyze`` write; ``--overwrite``
removes exactly those (``results.json`` first, so a new run that fails never leaves an old run looking
complete) and nothing else a user put there. ``tests/test_reliability.py`` checks that a full run + analyze
writes nothing outside the list.

:func:`lock` holds an exclusive OS lock (``fcntl.flock``) on ``DIR/.lock`` for as long as a process writes
the folder (run, resume, overwrite, analyze, ``Experiment.save``). A second writer gets
:class:`FolderBusyError` at once, naming the holder's process id. The OS drops the lock when the holder
exits, however it exits (SIGKILL included), so a lock is never stale. The lock file itself stays (deleting
it would race with the next writer) and does not count as content.
"""
from __future__ import annotations

import os
import socket
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import ConfigError, FolderBusyError, OutputError
from .io import TEMPORARY

CONFIG, CHECKPOINT, RESULTS = "config.json", "checkpoint.pt", "results.json"
DECODING = "decoding.json"  #: the in-run probes (``probe.every_ms``), one entry per probe
SCANPATH = "scanpath.npz"  #: the eyes' fixations (``record.scanpath``), one row per fixation
LOCK = ".lock"
#: stems of the plots ``saccade-sim analyze`` writes, each as STEM.png and its data STEM.npz
ANALYSIS_PLOTS = ("receptive_fields_*", "decoding_curve", "similarity", "population", "weights_over_time",
                  "scan_path", "eye_movements")
#: every file a run (``saccade-sim run``, ``Experiment.save``) and ``saccade-sim analyze`` write, results first
OUTPUTS = (RESULTS, CHECKPOINT, CONFIG, "history.npz", "learning_curve.png", DECODING, SCANPATH, "record_*.npz",
           "analysis.json", "report.md", *(f"{stem}.{ext}" for stem in ANALYSIS_PLOTS for ext in ("png", "npz")),
           TEMPORARY)

_held: dict[Path, int] = {}  #: run folders this process holds locked: resolved path -> lock file descriptor


def contents(out: Path) -> list[Path]:
    """What the folder holds apart from its lock file."""
    return sorted(p for p in Path(out).iterdir() if p.name != LOCK)


def is_folder(path: Path, what: str) -> bool:
    """Whether ``path`` is an existing folder; a path the system cannot even look up (a name too long, a
    parent that cannot be searched) is a :class:`ConfigError` naming ``what`` (e.g. ``--out``)."""
    found = lookup(path, what)
    return found is not None and stat.S_ISDIR(found.st_mode)


def require_folder(path: Path, what: str) -> None:
    """A :class:`ConfigError` unless ``path`` is an existing folder (``what``: the option that named it)."""
    if not is_folder(path, what):
        raise ConfigError(f"{what} {path}: no such run folder")


def lookup(path: Path, what: str) -> os.stat_result | None:
    """``os.stat(path)``, None where nothing is there; other refusals: :class:`ConfigError` naming ``what``."""
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise ConfigError(f"{what} {path}: {exc.strerror or exc}") from None


def check_out(out: Path, overwrite: bool) -> None:
    """Before any work: ``out`` must be a folder that can be created and written, and empty unless
    ``overwrite`` (checked again under the lock by :func:`prepare`)."""
    out = Path(out)
    if lookup(out, "--out") and not is_folder(out, "--out"):
        raise ConfigError(f"--out {out}: exists and is not a folder")
    existing = next((p for p in (out, *out.absolute().parents) if lookup(p, "--out")), None)
    if existing is not None and not existing.is_dir():
        raise OutputError(f"--out {out}: {existing} is a file, not a folder")
    needs = os.W_OK | os.X_OK | (os.R_OK if existing == out else 0)  # the run folder itself is read too
    if existing is not None and not os.access(existing, needs):
        raise OutputError(f"--out {out}: {existing} is not writable (permission denied or a read-only file system)")
    if out.is_dir() and contents(out) and not overwrite:
        _refuse_occupied(out)


def _refuse_occupied(out: Path) -> None:
    raise ConfigError(f"{out}: output folder is not empty (holds another run); "
                      "pass --overwrite, choose another --out, or continue it with --resume")


def create(out: Path) -> None:
    """``mkdir -p out``; a refusal is an :class:`OutputError` naming the folder and the reason."""
    try:
        Path(out).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{out}: cannot create the run folder: {exc.strerror or exc}") from None


def prepare(out: Path, overwrite: bool) -> None:
    """Under :func:`lock`: refuse a folder that holds anything unless ``overwrite``; with it, remove every
    earlier output (:func:`clear`)."""
    if contents(out):
        if not overwrite:
            _refuse_occupied(out)
        clear(out)


def clear(out: Path) -> None:
    """Remove every file of :data:`OUTPUTS` from ``out`` (``results.json`` first)."""
    for pattern in OUTPUTS:
        for path in sorted(Path(out).glob(pattern)):
            if path.is_file() or path.is_symlink():
                try:
                    path.unlink()
                except OSError as exc:
                    raise OutputError(f"{path}: cannot remove it for --overwrite: {exc.strerror or exc}") from None


@contextmanager
def lock(out: Path) -> Iterator[None]:
    """Hold the exclusive lock of run folder ``out`` (which must exist) while inside; re-entrant within a
    process. Another process holding it: :class:`FolderBusyError` at once (nothing waits)."""
    import fcntl

    key = Path(out).resolve()
    if key in _held:  # the outer holder releases it
        yield
        return
    path = Path(out) / LOCK
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise OutputError(f"{path}: cannot create the run folder's lock file: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
        os.close(fd)
        raise FolderBusyError(f"{out}: another saccade-sim process ({holder or 'unknown pid'}) is writing this run "
                              "folder; wait for it to end, stop it (Ctrl-C writes a checkpoint), or choose "
                              "another --out") from None
    except OSError as exc:
        os.close(fd)
        raise OutputError(f"{path}: cannot lock the run folder ({exc.strerror or exc}); this file system "
                          "may not support locks") from None
    try:  # who holds it, for the message a second writer gets (the lock itself is what counts)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
    except OSError:
        pass
    _held[key] = fd
    try:
        yield
    finally:
        del _held[key]
        os.close(fd)  # releases the lock
