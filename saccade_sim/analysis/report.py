"""``saccade-sim analyze RUN_DIR``: reload a finished run and write every analysis plot, its data, a
summary (``analysis.json``) and an index (``report.md``) into the run folder."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import io, runfolder
from ..config import resolve
from ..errors import ConfigError, DataError, SaccadeSimError
from . import figures
from .population import lifetime_sparseness, participation_ratio, population_sparseness
from .probe import grid_features
from .receptive import (fit_gabor, orientation_selectivity, orientation_tuning, response_weighted_average,
                        to_gray)
from .similarity import label_similarity, rsa_table, similarity_matrix


def load_run(run_dir: str | Path):
    """Rebuild the run's :class:`~saccade_sim.experiment.Experiment` from ``config.json`` and restore the
    state of ``checkpoint.pt`` (``weights_only``: tensors and plain containers only)."""
    from ..experiment import Experiment

    run_dir = Path(run_dir)
    for name in ("config.json", "checkpoint.pt"):
        if not (run_dir / name).exists():
            raise SaccadeSimError(f"{run_dir / name}: missing; analyze needs a finished run folder")
    try:
        tree = json.loads((run_dir / "config.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{run_dir / 'config.json'}: not a readable configuration ({exc})") from None
    if not isinstance(tree, dict):
        raise DataError(f"{run_dir / 'config.json'}: expected a table of settings, got {type(tree).__name__}")
    cfg = resolve(tree)
    cfg.run.progress = False
    exp = Experiment(cfg)
    state = io.load_torch(run_dir / "checkpoint.pt")
    try:
        exp.load_state_dict(state)
    except (KeyError, IndexError, RuntimeError, ValueError, TypeError) as exc:
        raise DataError(f"{run_dir / 'checkpoint.pt'}: does not fit the run's config.json "
                        f"({type(exc).__name__}: {exc})") from None
    return exp


def field_stats(fields: np.ndarray, max_units: int) -> dict[str, np.ndarray]:
    """Gabor fit R^2, fitted orientation and OSI of the first ``max_units`` fields [U, C, h, w]."""
    gray = to_gray(fields[:max_units])
    tuning, theta = orientation_tuning(gray)
    fits = [fit_gabor(f) for f in gray]
    return {"r2": np.array([f["r2"] for f in fits]), "theta": np.array([f["theta"] % np.pi for f in fits]),
            "osi": orientation_selectivity(tuning, theta), "tuning": tuning}


def _mean(values: np.ndarray) -> float | None:
    """Mean rounded to 3 digits, None when nothing was measured (JSON has no NaN)."""
    finite = values[np.isfinite(values)]
    return round(float(finite.mean()), 3) if len(finite) else None


def _responses(exp, layers, idx: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    """Glimpses [N*G, C, h, w], per-layer channel responses per glimpse [N*G, U] (mean over positions), and
    per-layer stimulus features as the probe sees them [N, F]."""
    m, store, p = exp.modality, exp.test_store, exp.config.probe
    g = m.space.size
    per_glimpse = grid_features(layers, m, store, idx, pool=1, aggregate="concat", batch=p.batch)
    probe_view = grid_features(layers, m, store, idx, pool=p.pool, aggregate=p.aggregate, batch=p.batch)
    glimpses = per_glimpse[0].view(len(idx) * g, *m.glimpse_shape)
    channels = [f.view(len(idx) * g, -1) for f in per_glimpse[1:]]
    return glimpses, channels, probe_view


def _fields(layer_index: int, layer, glimpses: torch.Tensor, responses: torch.Tensor) -> np.ndarray:
    """First layer: its weights as images (dense: reshaped to the glimpse); deeper: response-weighted
    averages of the glimpses."""
    if layer_index == 0:
        w = layer.weight.detach().cpu().double()
        return (w if layer.is_conv else w.view(len(w), *layer.in_shape)).numpy()
    return response_weighted_average(glimpses, responses).numpy()


def analyze(run_dir: str | Path, stimuli: int = 200, max_units: int = 64) -> dict[str, Any]:
    """Write the analysis plots of the run in ``run_dir`` (on ``stimuli`` held-out stimuli; Gabor fits on
    at most ``max_units`` units per layer); returns the summary written to ``analysis.json``."""
    for key, value in (("stimuli", stimuli), ("max_units", max_units)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"analyze --{key.replace('_', '-')}: must be an integer >= 1, got {value!r}")
    out = Path(run_dir)
    runfolder.require_folder(out, "analyze")
    with runfolder.lock(out):  # not while a run (or another analyze) writes the folder
        return _analyze(out, stimuli, max_units)


def _analyze(out: Path, stimuli: int, max_units: int) -> dict[str, Any]:
    exp = load_run(out)
    names = [a.name for a in exp.agents]
    idx = exp._probe_indices(len(exp.test_labels), stimuli, "analysis")
    labels = exp.test_labels.cpu()[idx].numpy()
    glimpses, trained, probe_view = _responses(exp, exp.layers, idx)
    _, random, _ = _responses(exp, exp.initial_layers, idx)
    entries: list[tuple[str, str]] = []
    complete = (out / runfolder.RESULTS).exists()
    summary: dict[str, Any] = {"stimuli": len(idx), "events": exp.eye.event, "run_events": exp.config.run.events,
                               "complete": complete, "layers": {}}

    for i, name in enumerate(names):
        f_tr = _fields(i, exp.layers[i], glimpses, trained[i])
        f_rn = _fields(i, exp.initial_layers[i], glimpses, random[i])
        st_tr, st_rn = field_stats(f_tr, max_units), field_stats(f_rn, max_units)
        stats = {f"{w}_{k}": v for w, s in (("trained", st_tr), ("random", st_rn)) for k, v in s.items()}
        how = "weights" if i == 0 else "response-weighted average glimpses"
        png = figures.receptive_fields(out, f"receptive_fields_{name}", f"{name} ({how})", f_tr, f_rn, stats)
        layer = summary["layers"][name] = {
            "field_kind": how, "field_shape": list(f_tr.shape[1:]),
            "gabor_r2": [_mean(st_tr["r2"]), _mean(st_rn["r2"])], "osi": [_mean(st_tr["osi"]), _mean(st_rn["osi"])],
            "flat_fields": [int(np.isnan(st_tr["osi"]).sum()), int(np.isnan(st_rn["osi"]).sum())]}
        fit = (f"mean Gabor R² {layer['gabor_r2'][0]} vs {layer['gabor_r2'][1]}" if layer["gabor_r2"][0] is not None
               else f"no Gabor fit ({'x'.join(map(str, f_tr.shape[2:]))} fields are too small)")
        entries.append((png, f"{name} receptive fields ({how}), trained vs random weights; {fit}, mean "
                             f"orientation selectivity {layer['osi'][0]} vs {layer['osi'][1]} (means over fields "
                             f"that are not flat; flat, e.g. silent units: {layer['flat_fields'][0]} vs "
                             f"{layer['flat_fields'][1]})"))

    probe = {}
    if (out / "results.json").exists():
        probe = json.loads((out / "results.json").read_text()).get("probe", {})
    png = figures.decoding(out, exp.decoding, names, probe)
    entries.append((png, "ridge-probe test accuracy per layer over training (probe.every_ms"
                         f"{'' if exp.decoding else ' was 0: final values only'}), with input and random baselines"))

    rsms = {"input": similarity_matrix(probe_view[0].numpy())}
    rsms.update({n: similarity_matrix(f.numpy()) for n, f in zip(names, probe_view[1:])})
    order = np.argsort(labels, kind="stable")
    rsms = {k: v[np.ix_(order, order)] for k, v in rsms.items()}
    table_names, table = rsa_table({**rsms, "labels": label_similarity(labels[order])})
    summary["rsa"] = {"names": table_names, "matrix": table.round(4).tolist()}
    png = figures.similarity(out, rsms, table_names, table, labels[order])
    entries.append((png, "representational similarity matrices (stimuli sorted by label) and their RSA with "
                         "each other and the labels: " + ", ".join(
                             f"{n}-labels {table[k, -1]:.2f}" for k, n in enumerate(table_names[:-1]))))

    pop: dict[str, dict[str, float]] = {}
    for name, r_tr, r_rn in zip(names, trained, random):
        pop[name] = {f"{w}_{k}": v for w, r in (("trained", r_tr.numpy()), ("random", r_rn.numpy()))
                     for k, v in (("lifetime_sparseness", float(np.nanmean(lifetime_sparseness(r)))),
                                  ("population_sparseness", float(np.nanmean(population_sparseness(r)))),
                                  ("participation_ratio", participation_ratio(r)))}
        summary["layers"][name].update(pop[name])
    png = figures.population(out, pop)
    entries.append((png, "lifetime / population sparseness (Vinje-Gallant) and participation ratio of the "
                         "per-glimpse channel responses, trained vs random weights"))

    if exp.history:
        png = figures.weights_over_time(out, exp.history, names)
        entries.append((png, "weight norm and relative update size |grad|/|W| per layer over simulated time"))

    if exp.modality.name == "image":
        dwell = exp.eye.dwell
        seen = [exp.eye.next_glimpse(0.0) for _ in range(dwell)]
        stim = int(seen[0].stimulus[0])
        gaze = np.stack([g.gaze[0].cpu().numpy() for g in seen if int(g.stimulus[0]) == stim])
        png = figures.scan_path(out, exp.eye_store[stim].cpu().numpy(), gaze, exp.config.glimpse.patch)
        entries.append((png, f"eye 0's first {len(gaze)} fixations (policy {exp.config.eye.policy}) over the "
                             "stimulus it looked at, regenerated from the run's seed"))

    io.write_json(out / "analysis.json", summary)
    lines = [f"# Analysis of {out.name}", "",
             f"Rule `{exp.config.rule.name}`, data `{exp.config.data.source}`, {len(idx)} held-out stimuli. "
             "Each plot's data is in the `.npz` of the same name; numbers in `analysis.json`.", ""]
    if not complete:
        lines[2:2] = [f"**Unfinished run**: these are the weights at event {summary['events']} of "
                      f"{exp.config.run.events} (no `results.json`); `saccade-sim run --resume` continues it.", ""]
    lines += [f"- [{png}]({png}) ([data]({png[:-4]}.npz)): {caption}" for png, caption in entries]
    records = sorted(p.name for p in out.glob("record_*.npz"))
    if records:
        lines += ["", "Recordings (`data`, `time_ms`, `event`): " + ", ".join(f"[{r}]({r})" for r in records)]
    io.atomic_write(out / "report.md", lambda p: p.write_text("\n".join(lines) + "\n"))
    return summary
