"""Plots of the analyses: each figure is written as PNG next to the data behind it (``.npz``), so that a
reader needs no Python to look at it and no plot to re-use the numbers."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .. import io  # noqa: E402


def save(fig: plt.Figure, out: Path, stem: str, data: dict[str, Any]) -> str:
    """Write ``stem.png`` (atomically) and ``stem.npz`` (the plotted arrays); returns the PNG's file name."""
    out = Path(out)
    io.atomic_write(out / f"{stem}.png", lambda p: fig.savefig(p, dpi=100, format="png"))
    plt.close(fig)
    io.save_npz(out / f"{stem}.npz", {k: np.asarray(v) for k, v in data.items()})
    return f"{stem}.png"


def tile(fields: np.ndarray, columns: int = 0) -> np.ndarray:
    """[U, C, h, w] fields -> one image mosaic [rows*(h+1), cols*(w+1), C], each field scaled to [0, 1]."""
    u, c, h, w = fields.shape
    cols = columns or int(np.ceil(np.sqrt(u)))
    rows = int(np.ceil(u / cols))
    lo = fields.reshape(u, -1).min(1)[:, None, None, None]
    hi = fields.reshape(u, -1).max(1)[:, None, None, None]
    scaled = (fields - lo) / np.clip(hi - lo, 1e-12, None)
    mosaic = np.ones((rows * (h + 1), cols * (w + 1), c))
    for i in range(u):
        r, q = divmod(i, cols)
        mosaic[r * (h + 1):r * (h + 1) + h, q * (w + 1):q * (w + 1) + w] = scaled[i].transpose(1, 2, 0)
    return mosaic if c == 3 else mosaic[..., 0]


def receptive_fields(out: Path, stem: str, title: str, trained: np.ndarray, random: np.ndarray,
                     stats: dict[str, np.ndarray]) -> str:
    """Trained and random-weights fields side by side, with the Gabor R^2 and OSI histograms below."""
    fig, ax = plt.subplots(2, 2, figsize=(10, 9), gridspec_kw={"height_ratios": [3, 1]})
    fig.suptitle(title)
    for a, fields, name in ((ax[0, 0], trained, "trained"), (ax[0, 1], random, "random weights")):
        a.imshow(tile(fields), cmap="gray", interpolation="nearest")
        a.set(title=name, xticks=[], yticks=[])
    for a, key, label in ((ax[1, 0], "r2", "Gabor fit R$^2$"), (ax[1, 1], "osi", "orientation selectivity")):
        bins = np.linspace(0, 1, 21)
        for who, name in (("trained", "trained"), ("random", "random weights")):
            v = stats[f"{who}_{key}"]
            a.hist(np.clip(v[np.isfinite(v)], 0, 1), bins, alpha=0.6, label=name)
        a.set(xlabel=label, ylabel="units")
        a.legend()
    fig.tight_layout()
    return save(fig, out, stem, {"trained_fields": trained, "random_fields": random, **stats})


def decoding(out: Path, curve: list[dict[str, Any]], layers: list[str], probe: dict[str, Any]) -> str:
    """Probe accuracy per layer over simulated time, the final value, and the input / random baselines."""
    fig, ax = plt.subplots(figsize=(7, 4))
    data: dict[str, Any] = {}
    t = np.array([c["time_ms"] / 1000 for c in curve])
    for i, name in enumerate(layers):
        color = f"C{i}"
        if curve:
            acc = np.array([c[name] for c in curve])
            ax.plot(t, acc, "o-", color=color, label=name)
            data[name] = acc
        if probe:
            ax.axhline(probe["baselines"]["random"][name], color=color, ls=":", label=f"{name} random weights")
    if probe:
        ax.axhline(probe["baselines"]["input"], color="k", ls="--", label="raw input")
        ax.axhline(probe["chance"], color="gray", ls="-.", label="chance")
        end = t[-1] if len(t) else 0.0
        ax.plot([end] * len(layers), [probe["layers"][n] for n in layers], "k*", ms=10, label="final probe")
        data.update(final=[probe["layers"][n] for n in layers], input=probe["baselines"]["input"],
                    random=[probe["baselines"]["random"][n] for n in layers], chance=probe["chance"])
    ax.set(xlabel="simulated time (s)", ylabel="test accuracy", title="linear decoding over training")
    if curve or probe:
        ax.legend(fontsize=7, loc="best")
    else:
        ax.text(0.5, 0.5, "no decoding curve (probe.every_ms = 0)\nand no final probe (unfinished run)",
                ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    return save(fig, out, "decoding_curve", {"time_s": t, "layers": np.array(layers), **data})


def similarity(out: Path, rsms: dict[str, np.ndarray], names: list[str], table: np.ndarray,
               labels: np.ndarray) -> str:
    """Each representation's RSM (stimuli sorted by label) and the RSA matrix between them and the labels."""
    fig, ax = plt.subplots(1, len(rsms) + 1, figsize=(3.2 * (len(rsms) + 1), 3.4))
    for a, (name, m) in zip(ax, rsms.items()):
        a.imshow(m, cmap="RdBu_r", vmin=-1, vmax=1)
        a.set(title=name, xticks=[], yticks=[])
    im = ax[-1].imshow(table, cmap="viridis", vmin=-0.2, vmax=1)
    ax[-1].set(xticks=range(len(names)), yticks=range(len(names)), title="RSA (Spearman)")
    ax[-1].set_xticklabels(names, rotation=90, fontsize=7)
    ax[-1].set_yticklabels(names, fontsize=7)
    for i in range(len(names)):
        for j in range(len(names)):
            ax[-1].text(j, i, f"{table[i, j]:.2f}", ha="center", va="center", fontsize=6, color="w")
    fig.colorbar(im, ax=ax[-1], fraction=0.046)
    fig.tight_layout()
    return save(fig, out, "similarity", {"names": np.array(names), "rsa": table, "labels": labels,
                                         **{f"rsm_{k}": v for k, v in rsms.items()}})


def population(out: Path, stats: dict[str, dict[str, float]]) -> str:
    """Lifetime and population sparseness and participation ratio per layer, trained vs random weights."""
    layers = list(stats)
    keys = ("lifetime_sparseness", "population_sparseness", "participation_ratio")
    fig, ax = plt.subplots(1, 3, figsize=(12, 3.5))
    x = np.arange(len(layers))
    for a, key in zip(ax, keys):
        a.bar(x - 0.2, [stats[n][f"trained_{key}"] for n in layers], 0.4, label="trained")
        a.bar(x + 0.2, [stats[n][f"random_{key}"] for n in layers], 0.4, label="random weights")
        a.set(xticks=x, title=key.replace("_", " "))
        a.set_xticklabels(layers)
        a.legend(fontsize=7)
    fig.tight_layout()
    return save(fig, out, "population", {f"{w}_{k}": [stats[n][f"{w}_{k}"] for n in layers]
                                         for k in keys for w in ("trained", "random")} | {"layers": layers})


def weights_over_time(out: Path, history: list[dict[str, Any]], layers: list[str]) -> str:
    """Weight norm |W| and relative update size |grad|/|W| (the rule's -dW before the learning rate, as the
    run's history records it) per layer over simulated time."""
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
    t = np.array([h["time_ms"] / 1000 for h in history])
    data: dict[str, Any] = {"time_s": t}
    for name in layers:
        for a, key in zip(ax, ("weight_norm", "update")):
            v = np.array([h.get(f"{name}/{key}", np.nan) for h in history])
            a.plot(t, v, label=name)
            data[f"{name}_{key}"] = v
    ax[0].set(xlabel="simulated time (s)", ylabel="|W|", title="weight norm")
    ax[0].ticklabel_format(axis="y", useOffset=False)
    ax[1].set(xlabel="simulated time (s)", ylabel="|grad| / |W| per event (before lr)", title="update size",
              yscale="log")
    for a in ax:
        a.legend(fontsize=7)
    fig.tight_layout()
    return save(fig, out, "weights_over_time", data)


def scan_path(out: Path, image: np.ndarray, gaze: np.ndarray, patch: int) -> str:
    """One eye's fixations (glimpse centres, numbered in order) drawn over the stimulus it looked at."""
    fig, ax = plt.subplots(figsize=(5, 5))
    shown = image.transpose(1, 2, 0)
    shown = (shown - shown.min()) / max(float(np.ptp(shown)), 1e-12)
    ax.imshow(shown if shown.shape[-1] == 3 else shown[..., 0], cmap="gray")
    centre = gaze + patch / 2 - 0.5
    ax.plot(centre[:, 1], centre[:, 0], "-", color="yellow", lw=1)
    ax.scatter(centre[:, 1], centre[:, 0], c=np.arange(len(centre)), cmap="autumn", s=25, zorder=3)
    for i, (y, x) in enumerate(centre):
        ax.annotate(str(i), (x, y), color="cyan", fontsize=6, xytext=(2, 2), textcoords="offset points")
    ax.add_patch(plt.Rectangle((gaze[0, 1] - 0.5, gaze[0, 0] - 0.5), patch, patch, fill=False, color="red"))
    ax.set(title=f"scan path ({len(gaze)} fixations; red: first glimpse)", xticks=[], yticks=[])
    fig.tight_layout()
    return save(fig, out, "scan_path", {"image": image, "gaze": gaze, "patch": patch})
