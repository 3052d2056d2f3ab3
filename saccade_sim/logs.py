"""Live logs of a run, written while it goes: TensorBoard event files and a CSV of the history.

``[log] tensorboard = true`` writes every history entry (each layer's relative update, local loss, weight
norm ... every ``run.check_every`` events), every in-run probe (``probe.every_ms``) and the final probe table as
scalars into ``RUN_DIR/tensorboard`` (``tensorboard --logdir runs``), step = glimpse event. ``[log] csv = true``
appends each history entry to ``RUN_DIR/history.csv`` as it is recorded (``tail -f`` it). A resumed run drops
what was logged after its checkpoint (TensorBoard's ``purge_step``; the CSV is rewritten from the checkpoint's
history), so the logs match an uninterrupted run's.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Sequence

from .errors import ConfigError
from .specs import LogConfig

TENSORBOARD_DIR, HISTORY_CSV = "tensorboard", "history.csv"


class RunLog:
    """Receives the run's records (``log(kind, entry)``) and writes them to the logs ``cfg`` asks for."""

    def __init__(self, out: str | Path, cfg: LogConfig, event: int = 0, history: Sequence[dict[str, Any]] = ()):
        out = Path(out)
        self.writer = None
        if cfg.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise ConfigError("log.tensorboard: needs the tensorboard package "
                                  "(pip install 'saccade-sim[tensorboard]')") from None
            # what a killed run logged after its checkpoint (at event `event`) is dropped
            self.writer = SummaryWriter(str(out / TENSORBOARD_DIR), purge_step=event + 1 if event else None)
        self.csv_file = self.csv = None
        if cfg.csv:
            self.csv_file = open(out / HISTORY_CSV, "w", newline="")
            for entry in history:
                self._csv_row(entry)

    def _csv_row(self, entry: dict[str, Any]) -> None:
        if self.csv is None:
            self.csv = csv.DictWriter(self.csv_file, list(entry), extrasaction="ignore")
            self.csv.writeheader()
        self.csv.writerow(entry)
        self.csv_file.flush()

    def __call__(self, kind: str, entry: dict[str, Any]) -> None:
        """``kind``: "history" (an entry of ``Experiment.history``), "decoding" (an in-run probe) or "results"
        (the finished run's ``results.json``, after which the logs are closed)."""
        if kind == "history" and self.csv_file is not None:
            self._csv_row(entry)
        if self.writer is None:
            if kind == "results":
                self.close()
            return
        if kind in ("history", "decoding"):
            prefix = "" if kind == "history" else "probe/"
            for key, value in entry.items():
                if key not in ("event", "time_ms") and isinstance(value, (int, float)):
                    self.writer.add_scalar(prefix + key, value, entry["event"])
        elif kind == "results":
            step, probe = entry["events"], entry.get("probe") or {}
            if probe:
                self.writer.add_scalar("final/input", probe["baselines"]["input"], step)
                for name, acc in probe["layers"].items():
                    self.writer.add_scalar(f"final/{name}", acc, step)
                    self.writer.add_scalar(f"final/{name}_random", probe["baselines"]["random"][name], step)
            self.writer.add_scalar("speed/glimpses_per_s", entry["glimpses_per_s"], step)
            self.close()
            return
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if self.csv_file is not None:
            self.csv_file.close()
            self.csv_file = None
