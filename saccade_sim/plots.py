"""PNG plots written into a run folder (matplotlib, Agg backend: no display needed)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .io import atomic_write  # noqa: E402


def learning_curve(history: list[dict[str, Any]], path: Path) -> None:
    """The rule's relative change |grad|/|W| per event, before the optimiser's learning rate (and the local
    loss, where the rule has one), per layer over simulated time."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    if history:
        t = [h["time_ms"] / 1000 for h in history]
        layers = sorted({k.split("/")[0] for k in history[0] if "/" in k})
        for name in layers:
            axes[0].plot(t, [h[f"{name}/update"] for h in history], label=name)
            axes[1].plot(t, [h[f"{name}/loss"] for h in history], label=name)
        axes[0].set_yscale("log")
        axes[0].legend()
    axes[0].set(xlabel="simulated time (s)", ylabel="|grad| / |W| per event", title="rule's relative change (before lr)")
    axes[1].set(xlabel="simulated time (s)", ylabel="local loss", title="local loss (0 if the rule has none)")
    fig.tight_layout()
    try:
        atomic_write(path, lambda p: fig.savefig(p, dpi=100, format="png"))
    finally:
        plt.close(fig)
