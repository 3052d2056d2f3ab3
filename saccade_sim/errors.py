"""The documented errors of saccade-sim: every failure a user can cause is one of these."""


class SaccadeSimError(Exception):
    """Base class; the CLI prints these as one line and exits with status 2."""


class ConfigError(SaccadeSimError):
    """A configuration key, type or value is invalid (the message names it)."""


class DataError(SaccadeSimError):
    """A stimulus file or array is missing, empty, corrupt or of the wrong shape (the message names it)."""


class DivergenceError(SaccadeSimError):
    """A layer's weights or activity became non-finite or exploded (the message names layer and time)."""


class Interrupted(SaccadeSimError):
    """The run was stopped (Ctrl-C / SIGTERM) after writing a checkpoint (the message says how to resume).
    ``signum`` is the signal that stopped it; the CLI exits with ``128 + signum`` (130 SIGINT, 143 SIGTERM)."""

    def __init__(self, message: str, signum: int = 2) -> None:
        super().__init__(message)
        self.signum = signum


class OutputError(SaccadeSimError):
    """The run folder or a file in it cannot be written (permissions, a file in the way, a full disk); the
    message names the path and the system's reason, and says what was kept."""


class FolderBusyError(OutputError):
    """Another process is writing the run folder (it holds the folder's lock); nothing was touched."""
