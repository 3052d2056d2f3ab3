"""``saccade-sim analyze RUN_DIR``: reload a finished run and write every analysis plot, its data, a
summary (``analysis.json``) and a report (``report.md``: the run's settings, its probe table, its
provenance and every figure, embedded, with a caption) into the run folder."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .. import io, runfolder
from ..config import resolve
from ..errors import ConfigError, DataError, SaccadeSimError
from ..progress import bar as progress_bar
from . import figures
from .figures import FieldAxes
from .population import lifetime_sparseness, participation_ratio, population_sparseness
from .probe import grid_features, probe_table
from .scanpath import eye_movement_figure, eye_movement_stats, longest_trace_visit
from .receptive import (GABOR_PARAMS, fit_gabor, orientation_selectivity, orientation_tuning,
                        response_weighted_average, to_gray)
from .similarity import label_similarity, rsa_table, similarity_matrix


def load_run(run_dir: str | Path, train: Any = None, test: Any = None):
    """Rebuild the run's :class:`~saccade_sim.experiment.Experiment` from ``config.json`` and restore the
    state of ``checkpoint.pt`` (``weights_only``: tensors and plain containers only). A run on a torch
    ``Dataset`` given in Python needs the same ``train`` (and ``test``) datasets again."""
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
    exp = Experiment(cfg, train=train, test=test)
    state = io.load_torch(run_dir / "checkpoint.pt")
    try:
        exp.load_state_dict(state)
    except (KeyError, IndexError, RuntimeError, ValueError, TypeError) as exc:
        raise DataError(f"{run_dir / 'checkpoint.pt'}: does not fit the run's config.json "
                        f"({type(exc).__name__}: {exc})") from None
    return exp


#: a field whose spatial variation holds at most this fraction of its energy, var(f) <= FLAT * mean(f^2), is
#: flat (silent or uniform): a Gabor of vanishing frequency would fit it with R^2 near 1, which says nothing
FLAT = 0.01


def field_stats(fields: np.ndarray, max_units: int, tick: Callable[[], Any] = lambda: None) -> dict[str, np.ndarray]:
    """Gabor fit R^2, fitted orientation and OSI of the first ``max_units`` fields [U, C, h, w]; NaN for the
    flat ones (:data:`FLAT`), which are not fitted."""
    gray = to_gray(fields[:max_units])
    flat = gray.var((1, 2)) <= FLAT * (gray ** 2).mean((1, 2))
    tuning, theta = orientation_tuning(gray)
    fits = []
    for f, is_flat in zip(gray, flat):
        fits.append(dict.fromkeys(("r2", "theta"), float("nan")) if is_flat else fit_gabor(f))
        tick()
    osi = np.where(flat, np.nan, orientation_selectivity(tuning, theta))
    return {"r2": np.array([f["r2"] for f in fits]), "theta": np.array([f["theta"] % np.pi for f in fits]),
            "osi": osi, "tuning": tuning}


def orientation_applies(modality: str, shape: tuple[int, ...], layer_index: int) -> str:
    """Why Gabor fits and orientation selectivity do not apply to a layer's fields of ``shape`` [C, h, w] ('' if
    they do: first-layer filters of images or video frames, large enough for the fit)."""
    if modality == "audio":
        return "a time x mel-band field has no visual orientation"
    if layer_index > 0:
        return "they describe a linear filter; a deeper layer's response-weighted average is not its filter"
    if shape[-2] * shape[-1] < 2 * len(GABOR_PARAMS):
        return (f"{shape[-2]}x{shape[-1]} fields are too small for a {len(GABOR_PARAMS)}-parameter Gabor fit "
                f"(it needs >= {2 * len(GABOR_PARAMS)} pixels)")
    return ""


def field_axes(exp) -> FieldAxes:
    """Spectrogram fields: time in ms along x, mel band up the y axis (low bands at the bottom)."""
    if exp.modality.name == "audio":
        o = exp.config.glimpse
        return FieldAxes.spectrogram(1000.0 * o.hop / o.sample_rate)
    return FieldAxes()


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
    averages of the glimpses minus the mean glimpse (what drives the unit beyond the average glimpse)."""
    if layer_index == 0:
        w = layer.weight.detach().cpu().double()
        return (w if layer.is_conv else w.view(len(w), *layer.in_shape)).numpy()
    return (response_weighted_average(glimpses, responses) - glimpses.double().mean(0)).numpy()


def longest_visit(exp, events: int) -> tuple[int, np.ndarray, int, int]:
    """Replay the run's first ``events`` fixations from its seed (a fresh Eye, as the run started) and return
    the longest stay of one eye on one stimulus: (stimulus, gazes [n, D], eye, first event)."""
    from ..eye import Eye
    from ..registry import POLICIES

    cfg = exp.config
    policy = POLICIES.get(cfg.eye.policy, "eye.policy")(cfg.policy)
    eye = Eye(exp.modality, exp.eye_store, exp.eye_labels, policy, cfg.eye, cfg.seed,
              exp.world.shards(cfg.eye.shards), draws=exp.eye.draws.shape[1])
    seen = [eye.next_glimpse(k * cfg.eye.fixation_ms) for k in range(events)]
    stim = torch.stack([g.stimulus.cpu() for g in seen]).numpy()
    gaze = torch.stack([g.gaze.cpu() for g in seen]).numpy()
    best = (0, 0, 0)  # length, eye, first event
    for b in range(stim.shape[1]):
        start = 0
        for e in range(1, events + 1):
            if e == events or stim[e, b] != stim[start, b]:
                best = max(best, (e - start, -b, -start))
                start = e
    n, b, start = best[0], -best[1], -best[2]
    return int(stim[start, b]), gaze[start:start + n, b], b, start


def settings_table(cfg: dict[str, Any]) -> list[str]:
    """The run's settings as a markdown table, one line per section (every key, an empty string as ``""``;
    config.json has them too)."""
    lines = ["| section | settings |", "|---|---|", f"| top | seed = {cfg['seed']}, device = {cfg['device']} |"]
    for section in ("data", "glimpse", "eye", "network", "rule", "run", "probe"):
        values = cfg.get(section) or {}
        text = ", ".join(f"{k} = {v if isinstance(v, str) and v else json.dumps(v)}" for k, v in values.items()
                         if not (section == "network" and (k == "layers") != bool(values.get("layers"))
                                 and k in ("layers", "preset")))
        lines.append(f"| {section} | {text.replace('|', '/')} |")
    return lines


def analyze(run_dir: str | Path, stimuli: int = 200, max_units: int = 64, progress: bool = False,
            train: Any = None, test: Any = None) -> dict[str, Any]:
    """Write the analysis plots of the run in ``run_dir`` (on ``stimuli`` held-out stimuli; Gabor fits on
    at most ``max_units`` units per layer) and ``report.md``; returns the summary written to ``analysis.json``.
    ``train`` / ``test``: the torch datasets of a run that was given them in Python."""
    for key, value in (("stimuli", stimuli), ("max_units", max_units)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"analyze --{key.replace('_', '-')}: must be an integer >= 1, got {value!r}")
    out = Path(run_dir)
    runfolder.require_folder(out, "analyze")
    with runfolder.lock(out):  # not while a run (or another analyze) writes the folder
        exp = load_run(out, train, test)
        names = [a.name for a in exp.agents]
        modality = exp.modality.name
        axes = field_axes(exp)
        fitted = [min(max_units, a.layer.weight.shape[0]) for a in exp.agents]
        with progress_bar(2 + 2 * sum(fitted) + 4, "analyze", progress, unit="step") as bar:
            summary, entries = _analyze(exp, out, names, modality, axes, stimuli, max_units, bar.update)
        results = json.loads((out / "results.json").read_text()) if (out / "results.json").exists() else {}
        io.write_json(out / "analysis.json", summary)
        io.atomic_write(out / "report.md", lambda p: p.write_text(_report(out, exp, results, summary, entries)))
        return summary


def _analyze(exp, out: Path, names: list[str], modality: str, axes: FieldAxes, stimuli: int, max_units: int,
             tick: Callable[[], Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    idx = exp.probe_indices(len(exp.test_labels), stimuli, "analysis")
    labels = exp.test_labels.cpu()[idx].numpy()
    glimpses, trained, probe_view = _responses(exp, exp.layers, idx)
    tick()
    _, random, _ = _responses(exp, exp.initial_layers, idx)
    tick()
    entries: list[tuple[str, str]] = []
    complete = (out / runfolder.RESULTS).exists()
    summary: dict[str, Any] = {"stimuli": len(idx), "events": exp.eye.event, "run_events": exp.config.run.events,
                               "complete": complete, "layers": {}}

    for i, name in enumerate(names):
        f_tr = _fields(i, exp.layers[i], glimpses, trained[i])
        f_rn = _fields(i, exp.initial_layers[i], glimpses, random[i])
        why_not = orientation_applies(modality, f_tr.shape[1:], i)
        n_fit = min(max_units, len(f_tr))
        if why_not:
            stats: dict[str, np.ndarray] = {}
            for _ in range(2 * n_fit):
                tick()
        else:
            st_tr, st_rn = field_stats(f_tr, max_units, tick), field_stats(f_rn, max_units, tick)
            stats = {f"{w}_{k}": v for w, s in (("trained", st_tr), ("random", st_rn)) for k, v in s.items()}
        how = "weights" if i == 0 else "response-weighted average glimpses minus the mean glimpse"
        png = figures.receptive_fields(out, f"receptive_fields_{name}", f"{name} receptive fields ({how})", f_tr,
                                       f_rn, stats, axes, why_not, "weight" if i == 0 else "glimpse value")
        layer = summary["layers"][name] = {"field_kind": how, "field_shape": list(f_tr.shape[1:])}
        if why_not:
            layer.update(gabor_r2=[None, None], osi=[None, None], orientation="not fitted: " + why_not)
            fit = f"Gabor fit and orientation selectivity not computed: {why_not}"
        else:
            layer.update(gabor_r2=[_mean(st_tr["r2"]), _mean(st_rn["r2"])],
                         osi=[_mean(st_tr["osi"]), _mean(st_rn["osi"])],
                         flat_fields=[int(np.isnan(st_tr["osi"]).sum()), int(np.isnan(st_rn["osi"]).sum())])
            fit = (f"mean Gabor R² {layer['gabor_r2'][0]} (random weights {layer['gabor_r2'][1]}), mean orientation "
                   f"selectivity {layer['osi'][0]} (random {layer['osi'][1]}), over the first {n_fit} units less the "
                   f"flat ones (silent or uniform: at most {FLAT:.0%} of the energy in spatial variation; trained "
                   f"{layer['flat_fields'][0]}, random {layer['flat_fields'][1]})")
        entries.append((png, f"{name} receptive fields ({how}), trained vs random weights, both on one signed "
                             f"colour scale; {fit}."))

    probe = {}
    if (out / "results.json").exists():
        probe = json.loads((out / "results.json").read_text()).get("probe", {})
    end_s = float(exp.simulation.env.now) / 1000
    png = figures.decoding(out, exp.decoding, names, probe, end_s)
    tick()
    entries.append((png, "ridge-probe test accuracy per layer over training: the random (initial) weights at t = 0, "
                         + (f"{len(exp.decoding)} in-run probes (probe.every_ms)" if exp.decoding
                            else "no in-run probes (probe.every_ms = 0)")
                         + f", the final probe at t = {end_s:g} s; raw-glimpse baseline and chance as lines."))

    rsms = {"input": similarity_matrix(probe_view[0].numpy())}
    rsms.update({n: similarity_matrix(f.numpy()) for n, f in zip(names, probe_view[1:])})
    order = np.argsort(labels, kind="stable")
    rsms = {k: v[np.ix_(order, order)] for k, v in rsms.items()}
    table_names, table = rsa_table({**rsms, "labels": label_similarity(labels[order])})
    summary["rsa"] = {"names": table_names, "matrix": table.round(4).tolist()}
    png = figures.similarity(out, rsms, table_names, table, labels[order], list(exp.split.classes))
    tick()
    entries.append((png, "representational similarity matrices (stimuli sorted by label, class boundaries drawn) "
                         "and their RSA (Spearman) with each other and the labels: " + ", ".join(
                             f"{n}-labels {table[k, -1]:.2f}" for k, n in enumerate(table_names[:-1])) + "."))

    pop: dict[str, dict[str, float]] = {}
    for name, r_tr, r_rn in zip(names, trained, random):
        pop[name] = {f"{w}_{k}": v for w, r in (("trained", r_tr.numpy()), ("random", r_rn.numpy()))
                     for k, v in (("lifetime_sparseness", float(np.nanmean(lifetime_sparseness(r)))),
                                  ("population_sparseness", float(np.nanmean(population_sparseness(r)))),
                                  ("participation_ratio", participation_ratio(r)))}
        summary["layers"][name].update(pop[name])
    png = figures.population(out, pop)
    tick()
    entries.append((png, "lifetime / population sparseness (Vinje-Gallant) and participation ratio of the "
                         "per-glimpse channel responses, trained vs random weights."))

    trace = dict(np.load(out / runfolder.SCANPATH)) if (out / runfolder.SCANPATH).exists() else None
    if trace is not None and len(trace["eye"]):
        grid, motor = exp.modality.space.grid.numpy(), exp.config.eye.motor
        moves = eye_movement_stats(trace, grid, motor, exp.config.eye.fixation_ms)
        summary["eye_movements"] = moves
        png = eye_movement_figure(out, trace, moves, motor, grid)
        entries.append((png, f"eye movements of the {moves['fixations']} fixations in {runfolder.SCANPATH} "
                             "(record.scanpath): fixation durations against the configured distribution, saccade "
                             "amplitudes, the main sequence and the coverage of the gaze grid during a visit "
                             f"(coverage {moves['coverage']:.2f}, revisit rate {moves['revisit_rate']:.2f})."))
    # the scan path: from the trace, or replayed from the seed (open-loop, lockstep eyes only)
    replayable = not getattr(exp.eye.policy, "subscribes", ()) and exp.config.eye.motor.timing == "lockstep"
    if modality in ("image", "audio", "video") and (trace is not None or replayable):
        events = min(3 * exp.eye.dwell, exp.config.run.events)
        if trace is not None:
            stim, gaze, eye, first = longest_trace_visit(trace)
        else:
            stim, gaze, eye, first = longest_visit(exp, events)
        box = tuple(exp.modality.glimpse_shape[1:])
        label = int(exp.eye_labels[stim])
        label = exp.split.classes[label] if label >= 0 else "none (unlabelled)"
        stimulus, frames = exp.eye_store[stim].cpu().numpy(), ""
        if modality == "video":  # a clip [C, T, H, W] and gazes (t, y, x): drawn over the frames the visit saw
            t0, t1 = int(gaze[:, 0].min()), int(gaze[:, 0].max()) + exp.config.glimpse.frames
            stimulus, gaze = stimulus[:, t0:t1].mean(1), gaze[:, 1:]
            frames = f"drawn over the mean of frames {t0}-{t1 - 1}"
        when = f", events {first}-{first + len(gaze) - 1}" if trace is None else ""
        title = (f"eye {eye}{when}: all {len(gaze)} fixations of its "
                 f"longest visit\n(stimulus {stim} of the eyes' store, class {label}; policy {exp.config.eye.policy}, "
                 f"jump probability {exp.config.eye.jump_prob:g})" + (f"\n({frames})" if frames else ""))
        png = figures.scan_path(out, stimulus, gaze, box, title, axes)
        where = (f"in {runfolder.SCANPATH} (the newest {len(trace['eye'])} fixations)" if trace is not None else
                 f"in the run's first {events} events (replayed from the run's seed)")
        entries.append((png, f"the longest stay of one eye on one stimulus {where}{'; ' + frames if frames else ''}: "
                             "every fixation in order, with its glimpse box."))
    tick()
    return summary, entries


def _report(out: Path, exp, results: dict[str, Any], summary: dict[str, Any], entries: list[tuple[str, str]]) -> str:
    cfg = exp.config.to_dict()
    lines = [f"# Run {out.name}", "",
             f"Rule `{cfg['rule']['name']}` on `{cfg['data']['source']}` ({cfg['data']['modality']}), seed "
             f"{cfg['seed']}: {results.get('events', exp.eye.event)} events x {cfg['eye']['batch']} eyes. "
             f"Analyses on {summary['stimuli']} held-out stimuli; each figure's data is in the `.npz` of the same "
             "name, the numbers in `analysis.json`, every setting in `config.json`.", "", "## Probe", ""]
    if not summary["complete"]:
        lines[2:2] = [f"**Unfinished run**: these are the weights at event {summary['events']} of "
                      f"{summary['run_events']} (no `results.json`); `saccade-sim run --resume` continues it.", ""]
    if results.get("probe"):
        lines += ["```", probe_table(results), "```", ""]
    else:
        lines += ["No probe table (no results.json, or probe.enabled = false).", ""]
    if results:
        lines += [f"Training: {results['wall_s']:.1f} s wall, {results['glimpses_per_s']:.0f} glimpses/s (probes "
                  f"excluded); final probe {results['probe_wall_s']:.1f} s.", ""]
    lines += ["## Settings", "", *settings_table(cfg), ""]
    prov = results.get("provenance")
    if prov:
        commit = f"{prov['git_commit'][:12]}{' (uncommitted changes)' if prov['git_dirty'] else ''}" \
            if prov.get("git_commit") else "not in a git checkout"
        lines += ["## Provenance", "", f"saccade-sim {prov['saccade_sim']} (commit {commit}), Python "
                  f"{prov['python']}, torch {prov['torch']} (CUDA {prov['cuda'] or 'none'}), on {prov['device_name']} "
                  f"with {prov['torch_threads']} torch thread(s), {prov['date']}; command: `{prov['command']}`.", ""]
    lines += ["## Figures", ""]
    for png, caption in entries:
        lines += [f"### {png[:-4].replace('_', ' ')}", "", f"![{png[:-4]}]({png})", "",
                  f"{caption} Data: [{png[:-4]}.npz]({png[:-4]}.npz).", ""]
    if (out / "learning_curve.png").exists():
        lines += ["### learning curve", "", "![learning curve](learning_curve.png)", "",
                  "The rule's relative change |grad|/|W| per event (before the learning rate), the local loss and "
                  "the weight norm per layer over simulated time (written by the run; data: `history.npz`).", ""]
    records = sorted(p.name for p in out.glob("record_*.npz"))
    if records:
        lines += ["## Recordings", "", "`data`, `time_ms`, `event`: " + ", ".join(f"[{r}]({r})" for r in records), ""]
    return "\n".join(lines)
