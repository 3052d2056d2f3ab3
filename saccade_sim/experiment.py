"""Build and run an experiment from a configuration: data -> modality -> eye -> layer agents -> probe.

    exp = Experiment({"rule": {"name": "oja"}, "run": {"glimpses": 2000}})
    results = exp.run()
    exp.save("runs/oja")
"""
from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import agents.rules  # noqa: F401  (registers the built-in rules)
from agents.agent import LayerAgent, make_optimizer
from agents.layers import PRESETS, Layer, build_layers

from . import datasets, io
from .analysis.probe import grid_features, ridge_probe
from .config import Config, resolve
from .errors import ConfigError
from .eye import Eye
from .registry import MODALITIES, POLICIES, RULES
from .seeding import generator, stream_seed
from .simulation import Simulation
from .whitening import N_PATCHES, fit_zca_kernel, whiten

TIMING_FIELDS = ("wall_s", "glimpses_per_s", "probe_wall_s")


def resolve_device(name: str) -> torch.device:
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device: {name!r} requested but CUDA is not available here; use device = \"cpu\"")
    return torch.device(name)


class Experiment:
    """Everything one run needs, built from a :class:`Config` (or a TOML-shaped dict)."""

    def __init__(self, config: Config | dict[str, Any] | None = None) -> None:
        cfg = config if isinstance(config, Config) else resolve(config or {})
        self.config = cfg
        self.device = resolve_device(cfg.device)
        modality_cls = MODALITIES.get(cfg.data.modality, "data.modality")
        self.split = datasets.load(cfg.data, modality_cls, cfg.glimpse, cfg.seed)
        train = modality_cls.prepare(self.split.train, cfg.glimpse)
        test = modality_cls.prepare(self.split.test, cfg.glimpse)
        if cfg.data.normalize in ("standard", "zca"):
            mean, std = train.mean(), train.std().clamp_min(1e-8)
            train, test = (train - mean) / std, (test - mean) / std
        if cfg.data.normalize == "zca":
            train, test = self._whiten(train, test)
        self.modality = modality_cls(cfg.glimpse, tuple(train.shape[1:]))
        self.train_store, self.test_store = train.to(self.device), test.to(self.device)
        self.train_labels = torch.from_numpy(self.split.train.y).to(self.device)
        self.test_labels = torch.from_numpy(self.split.test.y).to(self.device)

        policy = POLICIES.get(cfg.eye.policy, "eye.policy")(cfg.policy)
        self.eye = Eye(self.modality, self.train_store, self.train_labels, policy, cfg.eye,
                       generator(cfg.seed, "eye"))
        self.layers = self._build_layers()
        self.initial_layers = copy.deepcopy(self.layers)
        rule_cls = RULES.get(cfg.rule.name, "rule.name")
        self.agents = []
        for i, layer in enumerate(self.layers):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(stream_seed(cfg.seed, "rule", i))
                rule = rule_cls(layer, cfg.rule_options, i, len(self.layers)).to(self.device)
            params = list(layer.parameters()) + list(rule.parameters())
            opt = make_optimizer(params, cfg.rule.optimizer, cfg.rule.lr, cfg.rule.weight_decay)
            self.agents.append(LayerAgent(f"layer{i + 1}", layer, rule, opt))
        self.simulation = Simulation(self.eye, self.agents, cfg.eye.fixation_ms,
                                     [layer.spec.delay_ms for layer in self.layers])
        self.simulation.every(cfg.run.check_every, self._check)
        self.history: list[dict[str, Any]] = []
        self.wall_s = 0.0

    def _whiten(self, train: torch.Tensor, test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """ZCA-whiten both stores with a filter fitted on training patches (unit variance afterwards)."""
        d = self.config.data
        if train.dim() != 4 or min(train.shape[-2:]) < d.zca_size:
            raise ConfigError(f"data.normalize: 'zca' needs images [N, C, H, W] of at least data.zca_size = "
                              f"{d.zca_size} pixels, got a store of shape {tuple(train.shape)}")
        kernel = fit_zca_kernel(train, d.zca_size, d.zca_eps, N_PATCHES, generator(self.config.seed, "zca"))
        train, test = whiten(train, kernel), whiten(test, kernel)
        std = train.std().clamp_min(1e-8)
        return train / std, test / std

    def _build_layers(self) -> list[Layer]:
        cfg = self.config
        specs = cfg.network.layers
        if not specs:
            if cfg.network.preset not in PRESETS:
                raise ConfigError(f"network.preset: unknown value {cfg.network.preset!r}; "
                                  f"valid choices: {', '.join(PRESETS)}")
            specs = PRESETS[cfg.network.preset]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(stream_seed(cfg.seed, "weights"))
            layers = build_layers(specs, self.modality.glimpse_shape, cfg.network.channels_last)
        return [layer.to(self.device) for layer in layers]

    # -- simulation ----------------------------------------------------------------------------
    def _check(self, glimpse) -> None:
        entry: dict[str, Any] = {"event": glimpse.index + 1, "time_ms": glimpse.time}
        for agent in self.agents:
            for k, v in agent.check(glimpse.time, self.config.run.max_weight_norm).items():
                entry[f"{agent.name}/{k}"] = v
        self.history.append(entry)

    def simulate(self, events: int | None = None, progress: bool | None = None) -> None:
        """Run ``events`` glimpse events (default ``run.glimpses``) through the SimPy engine."""
        from tqdm.auto import tqdm

        events = self.config.run.glimpses if events is None else events
        show = self.config.run.progress if progress is None else progress
        bar = tqdm(total=events * self.eye.batch, unit="glimpse", unit_scale=True, disable=not show,
                   mininterval=0.5, desc=f"{self.config.rule.name}")
        start = time.perf_counter()
        with bar:
            self.simulation.run(events, tick=lambda: bar.update(self.eye.batch))
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
        self.wall_s += time.perf_counter() - start

    # -- evaluation ----------------------------------------------------------------------------
    def _probe_indices(self, n_items: int, limit: int, name: str) -> torch.Tensor:
        perm = np.random.default_rng(stream_seed(self.config.seed, "probe", name)).permutation(n_items)
        return torch.from_numpy(np.sort(perm[:limit] if limit else perm))

    def features(self, layers: list[Layer], store: torch.Tensor, idx: torch.Tensor) -> list[torch.Tensor]:
        p = self.config.probe
        return grid_features(layers, self.modality, store, idx, p.pool, p.aggregate, p.batch)

    def probe(self) -> dict[str, Any]:
        """Per-layer test accuracy of a ridge probe, with the raw-input and random-weights baselines."""
        p = self.config.probe
        tr = self._probe_indices(len(self.train_labels), p.train, "train")
        te = self._probe_indices(len(self.test_labels), p.test, "test")
        y_tr, y_te = self.train_labels.cpu()[tr], self.test_labels.cpu()[te]
        names = [a.name for a in self.agents]

        def scores(layers: list[Layer]) -> list[float]:
            f_tr, f_te = self.features(layers, self.train_store, tr), self.features(layers, self.test_store, te)
            return [ridge_probe(a, y_tr, b, y_te)["accuracy"]
                    for a, b in zip(f_tr, f_te)]

        trained, random = scores(self.layers), scores(self.initial_layers)
        return {"layers": dict(zip(names, trained[1:])),
                "baselines": {"input": trained[0], "random": dict(zip(names, random[1:]))},
                "n_train": len(tr), "n_test": len(te), "chance": 1.0 / len(self.split.classes)}

    def run(self, progress: bool | None = None) -> dict[str, Any]:
        """Simulate ``run.glimpses`` events, then probe every layer; returns the ``results.json`` tree."""
        self.simulate(progress=progress)
        start = time.perf_counter()
        probe = self.probe() if self.config.probe.enabled else {}
        self.results = self._results(probe, time.perf_counter() - start)
        return self.results

    def _results(self, probe: dict[str, Any], probe_wall_s: float) -> dict[str, Any]:
        cfg, events = self.config, self.eye.event
        return {
            "rule": cfg.rule.name, "modality": cfg.data.modality, "dataset": cfg.data.source,
            "seed": cfg.seed, "device": str(self.device), "events": events, "glimpses": events * self.eye.batch,
            "sim_time_ms": float(self.simulation.env.now), "wall_s": self.wall_s,
            "glimpses_per_s": events * self.eye.batch / max(self.wall_s, 1e-9), "probe_wall_s": probe_wall_s,
            "probe": probe, "classes": self.split.classes,
            "layers": {a.name: list(a.layer.post_shape) for a in self.agents},
        }

    # -- persistence ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue: weights, rule and optimiser states, RNGs, clock, stream position."""
        return {
            "config": self.config.to_dict(),
            "layers": [layer.state_dict() for layer in self.layers],
            "rules": [a.rule.state_dict() for a in self.agents],
            "optimizers": [a.optimizer.state_dict() for a in self.agents],
            "eye": self.eye.state_dict(),
            "clock_ms": float(self.simulation.env.now),
            "history": self.history,
        }

    def save(self, out: str | Path) -> Path:
        """Write ``config.json``, ``results.json``, ``checkpoint.pt``, ``history.npz`` and plots into ``out``."""
        from .plots import learning_curve

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        io.write_json(out / "config.json", self.config.to_dict())
        io.save_torch(out / "checkpoint.pt", self.state_dict())
        keys = sorted({k for h in self.history for k in h})
        io.save_npz(out / "history.npz",
                    {k.replace("/", "."): np.array([h.get(k, np.nan) for h in self.history]) for k in keys})
        learning_curve(self.history, out / "learning_curve.png")
        if hasattr(self, "results"):
            io.write_json(out / "results.json", self.results)
        return out
