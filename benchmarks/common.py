"""Shared helpers of the benchmark scripts: repeated, interleaved measurements, a table, a JSON file."""
from __future__ import annotations

import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def summary(values: Sequence[float]) -> dict[str, float]:
    """Median and spread (min, max, and the half inter-quartile range relative to the median)."""
    v = sorted(values)
    q = statistics.quantiles(v, n=4) if len(v) > 1 else [v[0]] * 3
    med = statistics.median(v)
    return {"median": med, "min": v[0], "max": v[-1], "rel_spread": (q[2] - q[0]) / 2 / med if med else 0.0,
            "n": len(v), "values": list(values)}


def interleaved(cases: dict[str, Callable[[], float]], repeats: int) -> dict[str, dict[str, float]]:
    """Run every case once per round, ``repeats`` rounds (so the compared things share the machine's load),
    and summarise each case's values."""
    values: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            values[name].append(fn())
    return {name: summary(v) for name, v in values.items()}


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def table(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    """A plain text table of ``rows`` (floats with 3 significant digits)."""
    def fmt(x: Any) -> str:
        if isinstance(x, float):
            return f"{x:.0f}" if abs(x) >= 100 else f"{x:.3g}"
        return str(x)

    cells = [list(columns)] + [[fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "torch": torch.__version__, "threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def write_json(path: str | Path, payload: dict[str, Any]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps({"machine": machine(), **payload}, indent=2))
    print(f"wrote {path}")
