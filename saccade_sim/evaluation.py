"""Evaluating an experiment: the linear probes of its layers (and their baselines), during and after the run, and
the ``results.json`` tree (:class:`Evaluation`, a part of :class:`saccade_sim.experiment.Experiment`)."""
from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np
import torch

from agents.layers import Layer

from . import provenance
from .analysis.probe import grid_features, linear_probe, ridge_probe
from .errors import ConfigError
from .hostsync import deliberate
from .progress import bar as progress_bar
from .seeding import stream_seed


class Evaluation:
    """The probes of a built experiment."""

    def probe_indices(self, n_items: int, limit: int, name: str) -> torch.Tensor:
        """The sorted indices of at most ``limit`` (0: all) of ``n_items`` stimuli, a permutation seeded by
        ``(seed, "probe", name)``: the same stimuli for every run of a seed."""
        perm = np.random.default_rng(stream_seed(self.config.seed, "probe", name)).permutation(n_items)
        return torch.from_numpy(np.sort(perm[:limit] if limit else perm))

    def features(self, layers: list[Layer], store: torch.Tensor, idx: torch.Tensor,
                 with_input: bool = True, tick: Callable[[], Any] = lambda: None) -> list[torch.Tensor]:
        """The probe's float32 features [input (``with_input``), layer 1, ...] of stimuli ``idx`` of ``store``
        (``tick()`` after each batch)."""
        p = self.config.probe
        return grid_features(layers, self.modality, store, idx, p.pool, p.aggregate, p.batch, torch.float32,
                             with_input, tick)

    def _probe_labels(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The probe's training and test stimuli (:meth:`probe_indices` with ``probe.train`` / ``probe.test``)."""
        p = self.config.probe
        return (self.probe_indices(len(self.train_labels), p.train, "train"),
                self.probe_indices(len(self.test_labels), p.test, "test"))

    def _fit(self, f_tr: list, y_tr: torch.Tensor, f_te: list, y_te: torch.Tensor,
             tick: Callable[[], Any] = lambda: None) -> list[float]:
        """Test accuracy of the probe's classifier on each feature set in turn, each dropped once fitted."""
        p = self.config.probe
        seed = stream_seed(self.config.seed, "probe", "linear")  # the linear readout's draws
        scores = []
        for i in range(len(f_tr)):
            if p.classifier == "linear":
                scores.append(linear_probe(f_tr[i], y_tr, f_te[i], y_te, p.epochs, seed, device=self.device)["accuracy"])
            else:
                scores.append(ridge_probe(f_tr[i], y_tr, f_te[i], y_te, solver=p.solver)["accuracy"])
            f_tr[i] = f_te[i] = None
            tick()
        return scores

    def probe_scores(self, layers: list[Layer], with_input: bool = True,
                     tick: Callable[[], Any] = lambda: None) -> list[float]:
        """Ridge-probe test accuracy of [input, layer 1, ...] of ``layers`` on the probe's splits (without the
        input, the costliest probe, when ``with_input`` is false); ``tick()`` after each batch and each fit."""
        tr, te = self._probe_labels()
        y_tr, y_te = self.train_labels.cpu()[tr], self.test_labels.cpu()[te]
        # the layers first; the raw glimpses (as many features as the largest layer, and no forward pass) after
        scores = self._fit(self.features(layers, self.train_store, tr, False, tick), y_tr,
                           self.features(layers, self.test_store, te, False, tick), y_te, tick)
        if with_input:
            scores.insert(0, self._fit(self.features([], self.train_store, tr, True, tick), y_tr,
                                       self.features([], self.test_store, te, True, tick), y_te, tick)[0])
        return scores

    def label_curve(self, layers: list[Layer], sizes: list[int]) -> dict[int, list[float]]:
        """n -> probe test accuracy of [layer 1, ...] of ``layers`` when the probe trains on n labelled stimuli,
        for each n of ``sizes``: the first n of the seeded training permutation that ``probe.train`` also takes
        (nested sets; the test split as in :meth:`probe`). The features are computed once, for the largest n."""
        n_train = len(self.train_labels)
        if not sizes or min(sizes) < 1 or max(sizes) > n_train:
            raise ConfigError(f"label_curve: sizes must be numbers of stimuli from 1 to the {n_train} training "
                              f"stimuli, got {sizes!r}")
        tr = self.probe_indices(n_train, max(sizes), "train")
        _, te = self._probe_labels()
        f_tr = self.features(layers, self.train_store, tr, False)
        f_te = self.features(layers, self.test_store, te, False)
        y_tr, y_te = self.train_labels.cpu(), self.test_labels.cpu()[te]
        curve = {}
        for n in sorted(sizes):
            rows = torch.from_numpy(np.searchsorted(tr.numpy(), self.probe_indices(n_train, n, "train").numpy()))
            curve[n] = self._fit([f[rows] for f in f_tr], y_tr[tr[rows]], list(f_te), y_te)
        return curve

    def _probe_during_run(self, glimpse) -> None:
        start = time.perf_counter()
        with deliberate("probe every probe.every_ms"):
            scores = self.probe_scores(self.layers, with_input=False)
        self.decoding.append({"event": glimpse.index + 1, "time_ms": glimpse.time,
                              **{a.name: acc for a, acc in zip(self.agents, scores)}})
        self.decoding_wall_s += time.perf_counter() - start
        self._log("decoding", self.decoding[-1])

    def probe(self, progress: bool = False) -> dict[str, Any]:
        """Per-layer test accuracy of a ridge probe, with the raw-input and random-weights baselines."""
        p = self.config.probe
        tr, te = self._probe_labels()
        names = [a.name for a in self.agents]
        batches = -(-len(tr) // p.batch) - (-len(te) // p.batch)
        # feature batches: trained layers, raw input, random layers; then one fit per feature set
        with progress_bar(3 * batches + 2 * len(names) + 1, "probe", progress, unit="step") as bar:
            trained = self.probe_scores(self.layers, tick=bar.update)
            random = self.probe_scores(self.initial_layers, with_input=False, tick=bar.update)
        return {"layers": dict(zip(names, trained[1:])),
                "baselines": {"input": trained[0], "random": dict(zip(names, random))},
                "n_train": len(tr), "n_test": len(te), "chance": 1.0 / len(self.split.classes)}

    def _results(self, probe: dict[str, Any], probe_wall_s: float) -> dict[str, Any]:
        cfg, events = self.config, self.eye.event  # glimpses: over all ranks (eye.batch is the global batch)
        glimpses = getattr(self.eye, "emitted", events * cfg.eye.batch)  # asynchronous eyes: as many as fixated
        return {
            "rule": cfg.rule.name, "modality": cfg.data.modality, "dataset": cfg.data.source,
            "seed": cfg.seed, "device": str(self.device), "events": events, "glimpses": glimpses,
            "sim_time_ms": float(self.simulation.env.now), "wall_s": self.wall_s,
            "glimpses_per_s": glimpses / max(self.wall_s, 1e-9), "probe_wall_s": probe_wall_s,
            "decoding_wall_s": self.decoding_wall_s,
            "probe": probe, "classes": self.split.classes,
            "layers": {a.name: list(a.layer.post_shape) for a in self.agents},
            "provenance": provenance.collect(self.device),
        }
