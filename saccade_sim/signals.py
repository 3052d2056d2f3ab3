"""What SIGINT (Ctrl-C) and SIGTERM do to a run, phase by phase (:class:`RunSignals`).

- Simulating: the first signal is recorded; the run stops before the next event, writes a checkpoint and
  raises ``Interrupted``. A second signal stops at once (the last checkpoint on disk is kept).
- Writing a checkpoint (:meth:`RunSignals.deferred`): signals are only recorded, so a checkpoint is never
  abandoned half-way; they take effect when it is on disk.
- Probing and saving, after the final checkpoint is on disk (:meth:`RunSignals.immediate`): a signal stops
  at once; the folder is resumable (``--resume`` finishes the probe and the save).

Outside a run, :func:`terminate_raises` makes SIGTERM raise like Ctrl-C (:class:`SignalStop`), so cleanup
code (temporary files, the folder lock) runs and the CLI exits with ``128 + signal number``.
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class SignalStop(KeyboardInterrupt):
    """Raised by a signal handler; a KeyboardInterrupt so that ``except Exception`` never swallows it.
    (Its only argument is the signal number: SimPy re-raises copies made with ``type(e)(*e.args)``.)"""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    def __str__(self) -> str:
        return name(self.signum)


def name(signum: int) -> str:
    return signal.Signals(signum).name


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def terminate_raises() -> Iterator[None]:
    """While inside (main thread only), SIGTERM raises :class:`SignalStop` as Ctrl-C raises KeyboardInterrupt."""
    if not _in_main_thread():
        yield
        return

    def handler(signum, frame):
        raise SignalStop(signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class RunSignals:
    """SIGINT and SIGTERM handlers for one run (a context manager; installs nothing outside the main thread).

    ``received`` is the first signal's number (None before any); :meth:`requested` is the simulation's
    stop test."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._mode = "stop"  # "stop" | "defer" | "raise"
        self._previous: dict[int, object] = {}

    def requested(self) -> bool:
        return self.received is not None

    def _handler(self, signum, frame) -> None:
        first = self.received is None
        if first:
            self.received = signum
        if self._mode == "raise" or (self._mode == "stop" and not first):
            raise SignalStop(signum)

    @contextmanager
    def _mode_as(self, mode: str) -> Iterator[None]:
        before, self._mode = self._mode, mode
        try:
            yield
        finally:
            self._mode = before

    def deferred(self):
        """Signals inside are only recorded (the block always completes)."""
        return self._mode_as("defer")

    @contextmanager
    def immediate(self) -> Iterator[None]:
        """A signal inside (or one recorded before) raises :class:`SignalStop` at once."""
        with self._mode_as("raise"):
            if self.received is not None:
                raise SignalStop(self.received)
            yield

    def __enter__(self) -> "RunSignals":
        if _in_main_thread():
            self._previous = {s: signal.signal(s, self._handler) for s in SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for s, h in self._previous.items():
            signal.signal(s, h)
        self._previous = {}
