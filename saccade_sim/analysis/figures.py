"""Plots of the analyses: each figure is written as PNG next to the data behind it (``.npz``), so that a
reader needs no Python to look at it and no plot to re-use the numbers."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import patheffects  # noqa: E402

from .. import io  # noqa: E402

MAX_FIELDS = 64  #: fields drawn per panel (the .npz keeps them all)


def save(fig: plt.Figure, out: Path, stem: str, data: dict[str, Any]) -> str:
    """Write ``stem.png`` (atomically) and ``stem.npz`` (the plotted arrays); returns the PNG's file name."""
    out = Path(out)
    io.atomic_write(out / f"{stem}.png", lambda p: fig.savefig(p, dpi=100, format="png"))
    plt.close(fig)
    io.save_npz(out / f"{stem}.npz", {k: np.asarray(v) for k, v in data.items()})
    return f"{stem}.png"


@dataclass
class FieldAxes:
    """How a field's two axes are drawn: labels, the size of one pixel along each, and whether row 0 is the
    bottom (spectrograms: low frequencies at the bottom) or the top (images)."""

    x_label: str = ""
    y_label: str = ""
    x_step: float = 1.0  #: data units per pixel column (e.g. ms per spectrogram frame)
    y_step: float = 1.0
    origin: str = "upper"

    @classmethod
    def spectrogram(cls, ms_per_frame: float) -> "FieldAxes":
        return cls("time (ms)", "mel band", ms_per_frame, 1.0, "lower")


def field_images(fields: np.ndarray, scale: float | None = None) -> tuple[np.ndarray, float, str]:
    """[U, C, h, w] -> (what to draw, the shared scale m, how): one signed grey image per unit for C != 3
    (C > 1, e.g. a video field's frames: their mean), drawn in [-m, m]; for C = 3 an RGB image 0.5 + f / 2m
    (grey = 0). m = ``scale``, or max |f| over all units, so the fields are compared on one scale."""
    f = np.asarray(fields, dtype=np.float64)
    m = scale or float(np.abs(f).max()) or 1.0
    if f.shape[1] == 3:
        return np.clip(0.5 + f.transpose(0, 2, 3, 1) / (2 * m), 0, 1), m, "RGB, grey = 0"
    how = "mean over the field's channels (frames)" if f.shape[1] > 1 else ""
    return f.mean(1), m, how


def _field_panel(panel, fields: np.ndarray, title: str, axes: FieldAxes, quantity: str, scale: float,
                 bar: bool) -> None:
    """One panel (a subfigure): a grid of unit fields on the signed colour scale [-scale, scale], with the
    colour bar when ``bar``."""
    shown = fields[:MAX_FIELDS]
    images, m, how = field_images(shown, scale)
    cols = int(np.ceil(np.sqrt(len(images))))
    rows = int(np.ceil(len(images) / cols))
    grid = np.atleast_2d(panel.subplots(rows, cols, squeeze=False))
    h, w = images.shape[1:3]
    extent = (0, w * axes.x_step, 0, h * axes.y_step) if axes.origin == "lower" else None
    im = None
    for i, ax in enumerate(grid.ravel()):
        if i >= len(images):
            ax.set_axis_off()
            continue
        im = ax.imshow(images[i], cmap="RdBu_r", vmin=-m, vmax=m, interpolation="nearest", origin=axes.origin,
                       extent=extent, aspect="auto" if extent else "equal")
        bottom_left = i == (rows - 1) * cols
        if axes.x_label and bottom_left:
            ax.set_xlabel(axes.x_label, fontsize=7)
            ax.set_ylabel(axes.y_label, fontsize=7)
            ax.tick_params(labelsize=6)
        else:
            ax.set_xticks([])
            ax.set_yticks([])
    more = f"; first {len(shown)} of {len(fields)}" if len(fields) > len(shown) else ""
    panel.suptitle(f"{title} ({how}{'; ' if how else ''}{len(shown)} units{more})", fontsize=9)
    if bar and images.ndim == 3:  # signed grey-scale fields (for RGB ones the figure title states the scale)
        colour_bar = panel.colorbar(im, ax=grid.ravel().tolist(), shrink=0.7, pad=0.02)
        colour_bar.set_label(f"{quantity} (one scale for every unit, trained and random; 0 = white)", fontsize=9)


def receptive_fields(out: Path, stem: str, title: str, trained: np.ndarray, random: np.ndarray,
                     stats: dict[str, np.ndarray], axes: FieldAxes, not_fitted: str = "",
                     quantity: str = "weight") -> str:
    """Trained and random-weights fields side by side on one signed colour scale (m = max |field| over the
    units drawn in both) with one colour bar, and below them the histograms of the Gabor-fit R^2 and the
    orientation selectivity index (or, when they do not apply, ``not_fitted``: the reason, in a short row)."""
    bottom_height = 0.25 if not_fitted else 1.0
    fig = plt.figure(figsize=(12, 7.2 + 2.3 * bottom_height), layout="constrained")
    scale = max(float(np.abs(f[:MAX_FIELDS]).max()) for f in (trained, random)) or 1.0
    rgb = f"\n(RGB: ±{scale:.3g} maps to the full range of each channel for every unit, trained and random; grey = 0)"
    fig.suptitle(title + (rgb if trained.shape[1] == 3 else ""))
    top, bottom = fig.subfigures(2, 1, height_ratios=[3, bottom_height])
    for panel, fields, name in zip(top.subfigures(1, 2), (trained, random), ("trained", "random weights")):
        _field_panel(panel, fields, name, axes, quantity, scale, bar=fields is random)
    hist = bottom.subplots(1, 2)
    for a, key, label in ((hist[0], "r2", "Gabor fit R$^2$"), (hist[1], "osi", "orientation selectivity index")):
        if not_fitted:
            a.text(0.5, 0.5, f"{label}: not fitted\n({not_fitted})", ha="center", va="center", fontsize=9,
                   wrap=True, transform=a.transAxes)
            a.set_axis_off()
            continue
        values, names = [], []
        for who, name in (("trained", "trained"), ("random", "random weights")):
            v = stats[f"{who}_{key}"]
            flat = int((~np.isfinite(v)).sum())
            values.append(np.clip(v[np.isfinite(v)], 0, 1))
            names.append(f"{name} (n = {len(values[-1])}" + (f"; {flat} flat, not fitted)" if flat else ")"))
        a.hist(values, np.linspace(0, 1, 21), label=names, color=["C0", "C1"])  # side by side in each bin
        a.set(xlabel=label, ylabel="units")
        a.legend(fontsize=8)
    return save(fig, out, stem, {"trained_fields": trained, "random_fields": random, **stats})


def decoding(out: Path, curve: list[dict[str, Any]], layers: list[str], probe: dict[str, Any],
             end_s: float) -> str:
    """Probe accuracy per layer over simulated time: at t = 0 the random weights (the network's initial
    state), the in-run probes (``probe.every_ms``), the final probe at the run's end ``end_s``; the raw-input
    baseline and chance as horizontal lines."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    data: dict[str, Any] = {"layers": np.array(layers), "end_s": end_s}
    markers = "os^Dv<>p*h"
    for i, name in enumerate(layers):
        t = [c["time_ms"] / 1000 for c in curve]
        acc = [c[name] for c in curve]
        if probe:
            t, acc = [0.0, *t], [probe["baselines"]["random"][name], *acc]
            if not curve or abs(t[-1] - end_s) > 1e-9:
                t, acc = [*t, end_s], [*acc, probe["layers"][name]]
        ax.plot(t, acc, marker=markers[i % len(markers)], color=f"C{i}", label=name)
        data[f"{name}_time_s"], data[f"{name}_accuracy"] = np.array(t), np.array(acc)
    if probe:
        ax.axhline(probe["baselines"]["input"], color="k", ls="--", label="raw glimpses (input)")
        ax.axhline(probe["chance"], color="gray", ls=":", label="chance")
        data.update(input=probe["baselines"]["input"], chance=probe["chance"])
    note = "t = 0: random (initial) weights" + ("" if curve else "; no in-run probes (set probe.every_ms)")
    ax.set(xlabel="simulated time (s)", ylabel="test accuracy (ridge probe)", xlim=(-0.03 * end_s, 1.03 * end_s),
           title=f"linear decoding over training\n({note})")
    if curve or probe:
        ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    else:
        ax.text(0.5, 0.5, "no decoding curve (probe.every_ms = 0)\nand no final probe (unfinished run)",
                ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    return save(fig, out, "decoding_curve", data)


def _class_ticks(ax, labels: np.ndarray, names: list[str]) -> None:
    """Class boundaries as lines and, for up to 20 classes, the class names at the blocks' centres."""
    change = np.flatnonzero(np.diff(labels)) + 0.5
    for c in change:
        ax.axhline(c, color="k", lw=0.5)
        ax.axvline(c, color="k", lw=0.5)
    edges = np.concatenate([[-0.5], change, [len(labels) - 0.5]])
    centres = (edges[:-1] + edges[1:]) / 2
    classes = [names[int(labels[int(np.ceil(e + 0.5))])] if names else str(labels[int(np.ceil(e + 0.5))])
               for e in edges[:-1]]
    if len(classes) <= 20:
        short = max(len(c) for c in classes) <= 2
        ax.set_xticks(centres, classes, rotation=0 if short else 90, fontsize=8 if short else 6)
        ax.set_yticks(centres, classes, fontsize=8 if short else 6)
    else:
        ax.set_xticks([])
        ax.set_yticks([])


def similarity(out: Path, rsms: dict[str, np.ndarray], names: list[str], table: np.ndarray,
               labels: np.ndarray, class_names: list[str]) -> str:
    """Each representation's RSM (stimuli sorted by label, class boundaries drawn) on one colour scale, and
    the RSA matrix between them and the labels with its values written in."""
    n = len(rsms)
    fig, ax = plt.subplots(1, n + 1, figsize=(3.6 * (n + 1) + 1, 4.2), layout="constrained",
                           gridspec_kw={"width_ratios": [1] * n + [1.15]})
    im = None
    for a, (name, m) in zip(ax, rsms.items()):
        im = a.imshow(m, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
        a.set_title(f"{name} RSM", fontsize=10)
        _class_ticks(a, labels, class_names)
    fig.colorbar(im, ax=ax[:n].tolist(), shrink=0.8, label="Pearson correlation between stimuli")
    rsa_im = ax[-1].imshow(table, cmap="viridis", vmin=min(0.0, float(table.min())), vmax=1)
    ax[-1].set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    ax[-1].set_yticks(range(len(names)), names, fontsize=8)
    ax[-1].set_title("RSA (Spearman)", fontsize=10)
    for i in range(len(names)):
        for j in range(len(names)):
            colour = "k" if rsa_im.norm(table[i, j]) > 0.6 else "w"
            ax[-1].text(j, i, f"{table[i, j]:.2f}", ha="center", va="center", fontsize=9, color=colour)
    fig.colorbar(rsa_im, ax=ax[-1], shrink=0.8, label="Spearman correlation between RSMs")
    return save(fig, out, "similarity", {"names": np.array(names), "rsa": table, "labels": labels,
                                         **{f"rsm_{k}": v for k, v in rsms.items()}})


def population(out: Path, stats: dict[str, dict[str, float]]) -> str:
    """Lifetime and population sparseness and participation ratio per layer, trained vs random weights."""
    layers = list(stats)
    keys = ("lifetime_sparseness", "population_sparseness", "participation_ratio")
    fig, ax = plt.subplots(1, 3, figsize=(12, 3.5))
    x = np.arange(len(layers))
    for a, key in zip(ax, keys):
        for dx, who, name in ((-0.2, "trained", "trained"), (0.2, "random", "random weights")):
            values = [stats[n][f"{who}_{key}"] for n in layers]
            bars = a.bar(x + dx, values, 0.4, label=name, color="C0" if who == "trained" else "C1")
            a.bar_label(bars, fmt="%.2f", fontsize=8)
        a.set(xticks=x, title=key.replace("_", " "))
        a.set_xticklabels(layers)
        a.margins(y=0.15)
    for a in ax[:2]:
        a.set_ylabel("Vinje-Gallant S (0 = dense, 1 = one-hot)")
    ax[2].set_ylabel("effective number of dimensions")
    fig.legend(*ax[0].get_legend_handles_labels(), loc="upper center", ncols=2, fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    return save(fig, out, "population", {f"{w}_{k}": [stats[n][f"{w}_{k}"] for n in layers]
                                         for k in keys for w in ("trained", "random")} | {"layers": layers})


def scan_path(out: Path, stimulus: np.ndarray, gaze: np.ndarray, box: tuple[int, int], title: str,
              axes: FieldAxes) -> str:
    """The fixations of one visit (glimpse boxes, centres numbered in order, arrows between them) drawn over
    the stimulus [C, H, W] it looked at; ``gaze`` [n, 2] are the boxes' first (row, column)."""
    fig, ax = plt.subplots(figsize=(7, 6.5))
    shown = stimulus.transpose(1, 2, 0).astype(np.float64)
    shown = (shown - shown.min()) / max(float(np.ptp(shown)), 1e-12)
    ax.imshow(shown if shown.shape[-1] == 3 else shown[..., 0], cmap="gray", origin=axes.origin,
              aspect="auto" if axes.origin == "lower" else "equal", interpolation="nearest")
    h, w = box
    centre = gaze + np.array([h, w]) / 2 - 0.5
    order = plt.cm.viridis(np.linspace(0, 1, len(gaze)))
    for i, (y, x) in enumerate(gaze):
        ax.add_patch(plt.Rectangle((x - 0.5, y - 0.5), w, h, fill=False, color=order[i], lw=0.8, alpha=0.6))
    for i in range(len(centre) - 1):
        ax.annotate("", centre[i + 1][::-1], centre[i][::-1],
                    arrowprops=dict(arrowstyle="->", color=order[i], lw=1.2, shrinkA=4, shrinkB=4))
    dots = ax.scatter(centre[:, 1], centre[:, 0], c=np.arange(len(centre)), cmap="viridis", s=60, zorder=3,
                      edgecolors="w", linewidths=0.8)
    outline = [patheffects.withStroke(linewidth=1.5, foreground="k")]
    for i, (y, x) in enumerate(centre):
        ax.annotate(str(i), (x, y), color="w", fontsize=6, ha="center", va="center", zorder=4, path_effects=outline)
    bar = fig.colorbar(dots, ax=ax, shrink=0.7)
    bar.set_label("fixation (order)")
    ax.set_title(title, fontsize=9)
    if axes.x_label:
        ax.set(xlabel=axes.x_label.replace(" (ms)", " (frames)"), ylabel=axes.y_label)
    else:
        ax.set(xticks=[], yticks=[])
    fig.tight_layout()
    return save(fig, out, "scan_path", {"stimulus": stimulus, "gaze": gaze, "box": np.array(box)})
