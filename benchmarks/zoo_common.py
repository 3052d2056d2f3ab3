"""Shared by the rule-zoo benchmarks: data paths, seeds statistics, a text table, the JSON record."""
from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
from pathlib import Path
from typing import Any, Sequence

import torch

DATA = Path(os.environ.get("SACCADE_SIM_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def machine() -> str:
    """e.g. '2-core x86_64 CPU, no GPU' (the cores torch may use)."""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{os.cpu_count()}-core {platform.machine()} CPU, {gpu}"


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def fmt(values: Sequence[float]) -> str:
    m, s = mean_sd(values)
    return f"{m:.3f} ± {s:.3f}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table with aligned columns."""
    cells = [list(header)] + [list(r) for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def write_record(path: str | Path, name: str, settings: dict[str, Any], results: Any) -> None:
    """JSON with the date, the machine, the settings and the measured results."""
    record = {"benchmark": name, "date": datetime.date.today().isoformat(), "machine": machine(),
              "torch_threads": torch.get_num_threads(), "settings": settings, "results": results}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(record, indent=2))
