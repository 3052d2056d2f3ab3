"""Progress bars that redraw in a terminal and write a few whole lines into a log file.

In a terminal a bar redraws in place twice a second. When stderr is not a terminal (a log file, a batch
job), tqdm's carriage-return redraws would pile up into one endless line, so the bar writes at most one plain
line every :data:`LOG_INTERVAL_S` seconds (and one at the end) instead.
"""
from __future__ import annotations

import sys
from typing import Any, TextIO

from tqdm.auto import tqdm

LOG_INTERVAL_S = 30.0  #: seconds between lines when stderr is not a terminal


class LineStream:
    """A text stream for tqdm that turns each carriage-return redraw into one line of ``stream``."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> None:
        line = text.replace("\r", "").strip()
        if line:
            self.stream.write(line + "\n")

    def flush(self) -> None:
        self.stream.flush()


def bar(total: int, desc: str, enabled: bool = True, **kwargs: Any) -> tqdm:
    """A tqdm bar on stderr: live in a terminal, a line per :data:`LOG_INTERVAL_S` s in a log (disabled:
    ``enabled`` false)."""
    stream = sys.stderr
    live = hasattr(stream, "isatty") and stream.isatty()
    options = dict(mininterval=0.5) if live else dict(file=LineStream(stream), mininterval=LOG_INTERVAL_S,
                                                       maxinterval=LOG_INTERVAL_S, ascii=True, ncols=100)
    return tqdm(total=total, desc=desc, disable=not enabled, **{**options, **kwargs})
