"""PNG plots written into a run folder (matplotlib, Agg backend: no display needed)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .io import atomic_write  # noqa: E402


def learning_curve(history: list[dict[str, Any]], path: Path) -> None:
    """Per layer over simulated time: the rule's relative change |grad|/|W| per event (before the optimiser's
    learning rate), the local loss (where the rule has one) and the weight norm |W|."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    t = [h["time_ms"] / 1000 for h in history]
    layers = sorted({k.split("/")[0] for h in history[:1] for k in h if "/" in k})
    panels = (("update", "|grad| / |W| per event", "rule's relative change (before lr)"),
              ("loss", "local loss", "local loss"), ("weight_norm", "|W|", "weight norm"))
    for ax, (key, ylabel, title) in zip(axes, panels):
        series = {n: [h.get(f"{n}/{key}", float("nan")) for h in history] for n in layers}
        if key == "loss" and not any(v for s in series.values() for v in s if v == v):
            ax.text(0.5, 0.5, "this rule has no local loss", ha="center", va="center", transform=ax.transAxes)
            ax.set(title=title, xticks=[], yticks=[])
            continue
        for i, (name, values) in enumerate(series.items()):
            ax.plot(t, values, marker="o" if len(t) < 20 else None, ms=3, color=f"C{i}", label=name)
        if key == "update" and any(v > 0 for s in series.values() for v in s):
            ax.set_yscale("log")
        if key == "weight_norm":
            ax.ticklabel_format(axis="y", useOffset=False)
        ax.set(xlabel="simulated time (s)", ylabel=ylabel, title=title)
        if layers:
            ax.legend(fontsize=8)
    if not history:
        fig.suptitle("no history: the run was shorter than run.check_every events")
    fig.tight_layout()
    try:
        atomic_write(path, lambda p: fig.savefig(p, dpi=100, format="png"))
    finally:
        plt.close(fig)
