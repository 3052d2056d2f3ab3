"""Building an experiment: the data (normalised, whitened), the modality, the layers, the eye, the network's
edges and the layer agents, from a configuration (:class:`Building`, a part of
:class:`saccade_sim.experiment.Experiment`)."""
from __future__ import annotations

import copy
import dataclasses
from typing import Any

import numpy as np
import torch

from agents.agent import LayerAgent, make_optimizer, make_scheduler
from agents.dendrites import DendriticEdge
from agents.layers import PRESETS, build_layers, calibrate, needs_calibration

from . import datasets, distributed, plugins  # noqa: F401  (plugins: registers the built-ins)
from .config import Config, resolve
from .errors import ConfigError, DataError
from .asynchronous import AsynchronousEye
from .eye import Eye
from .oculomotor import check_asynchronous
from .registry import MODALITIES, POLICIES, RULES
from .seeding import generator, stream_seed
from .specs import LayerSpec
from .whitening import MAX_IMAGE_ENTRIES, N_IMAGES, N_PATCHES, fit_image_zca, fit_zca_kernel, whiten, whiten_images
from .wiring import layer_inputs, network_edges


def resolve_device(name: str) -> torch.device:
    """``device`` as a torch device; a CUDA device that is absent (or malformed) is a ConfigError."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device: cannot parse {name!r}; valid choices: cpu, cuda, cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device: {name!r} requested but CUDA is not available here; use device = \"cpu\"")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device: {name!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist")
    return device


class Building:
    """How an experiment is built (``Experiment.__init__`` calls :meth:`build`)."""

    def build(self, config: Config | dict[str, Any] | None, train: Any = None, test: Any = None) -> None:
        """Resolve the configuration, load and normalise the data (``data.normalize``), and build the modality,
        the layers (calibrated), the eye, the graph's edges and the layer agents with their rules, dendritic
        edges, optimisers and weight syncs."""
        cfg = config if isinstance(config, Config) else resolve(config or {})
        if train is not None:
            cfg.data.source = f"python:{type(train).__name__}"
        self.world = distributed.world()
        if cfg.eye.shards == "auto":  # one logical shard per rank, fixed from here on (checkpoints record it)
            if cfg.eye.batch % self.world.size:
                raise ConfigError(f"eye.batch: {cfg.eye.batch} eyes cannot be split evenly over {self.world.size} "
                                  f"ranks; set eye.batch to a multiple of {self.world.size}")
            shards = cfg.eye.shard_count(self.world.size)
            cfg = dataclasses.replace(cfg, eye=dataclasses.replace(cfg.eye, shards=shards))
        self.config = cfg
        self.device = resolve_device(distributed.local_device(cfg.device, self.world))
        modality_cls = MODALITIES.get(cfg.data.modality, "data.modality")
        self.split = datasets.load(cfg.data, modality_cls, cfg.glimpse, cfg.seed, train, test)
        labels = np.unique(np.concatenate([self.split.train.y, self.split.test.y]))
        if cfg.probe.enabled and len(labels) < 2:
            raise DataError(f"data.source {cfg.data.source}: every stimulus has label {labels[0]}; the probe needs at "
                            "least 2 classes (set probe.enabled = false to train without it)")
        labelled = len(self.split.train)
        seen = [self.split.train] + ([self.split.unlabelled] if self.split.unlabelled is not None else [])
        prepared = [modality_cls.prepare(part, cfg.glimpse) for part in seen]
        test = modality_cls.prepare(self.split.test, cfg.glimpse)
        for what, part in (("test", test), *(("unlabelled", p) for p in prepared[1:])):
            if part.shape[1:] != prepared[0].shape[1:]:
                raise DataError(f"data.source {cfg.data.source}: {what} stimuli have shape {tuple(part.shape[1:])} "
                                f"but training stimuli {tuple(prepared[0].shape[1:])} (after data preparation); all "
                                "parts must have the same stimulus shape")
        train = torch.cat(prepared)  # what the eyes see
        if cfg.data.normalize in ("standard", "zca"):
            mean, std = train.mean(), train.std().clamp_min(1e-8)
            train, test = (train - mean) / std, (test - mean) / std
        if cfg.data.normalize == "zca":
            train, test = self._whiten(train, test)
        elif cfg.data.normalize == "zca_image":
            train, test = self._whiten_images(train, test)
        self.modality = modality_cls(cfg.glimpse, tuple(train.shape[1:]))
        self.eye_store, self.test_store = train.to(self.device), test.to(self.device)
        self.train_store = self.eye_store[:labelled]  #: the labelled training stimuli (the probe's)
        self.eye_labels = torch.from_numpy(np.concatenate([p.y for p in seen])).to(self.device)  #: -1: unlabelled
        self.train_labels = self.eye_labels[:labelled]
        self.test_labels = torch.from_numpy(self.split.test.y).to(self.device)

        specs = self._layer_specs()
        names = [f"layer{i + 1}" for i in range(len(specs))]
        self.edges = network_edges(names, [spec.delay_ms for spec in specs], cfg.network.edges)
        layers = build_layers(specs, self.modality.glimpse_shape, cfg.network.channels_last, seed=cfg.seed,
                              inputs=layer_inputs(self.edges, names))
        self.layers = [layer.to(self.device) for layer in layers]
        if any(needs_calibration(layer.spec) for layer in self.layers):
            calibrate(self.layers, self._calibration_glimpses())
        self.initial_layers = copy.deepcopy(self.layers)
        rule_cls = RULES.get(cfg.rule.name, "rule.name")
        layer_rules = [cfg.rule_for_layer(i, len(self.layers)) for i in range(len(self.layers))]
        columns = np.cumsum([0] + [rule_cls.draws_needed(options) for _, options in layer_rules]).tolist()
        policy = POLICIES.get(cfg.eye.policy, "eye.policy")(cfg.policy)
        check_asynchronous(cfg.eye.motor, cfg.record.monitors, cfg.network.edges)
        eye_cls = Eye if cfg.eye.motor.timing == "lockstep" else AsynchronousEye
        self.eye = eye_cls(self.modality, self.eye_store, self.eye_labels, policy, cfg.eye, cfg.seed,
                           self.world.shards(cfg.eye.shards), draws=columns[-1])
        self.agents = []
        for i, (layer, (settings, options)) in enumerate(zip(self.layers, layer_rules)):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(stream_seed(cfg.seed, "rule", i))
                rule = rule_cls(layer, options, i, len(self.layers)).to(self.device)
            rule.bind(self.modality.space, slice(columns[i], columns[i + 1]), self.eye.per_shard, self.eye.batch)
            dendrites = self._dendrites(names, i)
            params = list(layer.parameters()) + list(rule.parameters()) + [e.weight for e in dendrites]
            opt = make_optimizer(params, settings.optimizer, settings.lr, settings.weight_decay)
            scheduler = None
            if settings.schedule.kind != "constant" or settings.schedule.warmup or settings.schedule.hold:
                scheduler = make_scheduler(opt, settings.schedule, cfg.run.events // settings.update_every)
            sync = distributed.make_sync(params, cfg.distributed, self.world,
                                         [layer.transmit_mean] if layer.spec.center else [])
            self.agents.append(LayerAgent(names[i], layer, rule, opt, sync, scheduler, settings.update_every, dendrites))
        if cfg.run.compile != "none":
            self._compile(cfg.run.compile)

    def _compile(self, mode: str) -> None:
        """Compile every agent's per-event step (``run.compile``). The agents share one code object, so each
        compiled frame holds a graph per layer: the recompile limit is raised to fit them."""
        if self.world.size > 1:
            raise ConfigError("run.compile: not supported in a distributed run (the weight sync's collectives "
                              "would be traced); set run.compile = \"none\"")
        if any(agent.scheduler is not None for agent in self.agents):
            raise ConfigError("run.compile: not supported with a learning-rate schedule (the optimiser's rate, a "
                              "Python number, changes every event and would recompile the step); set run.compile "
                              "= \"none\"")
        import torch._dynamo

        torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 8 * len(self.agents))
        for agent in self.agents:
            agent.compile(mode)

    def _dendrites(self, names: list[str], index: int) -> list[DendriticEdge]:
        """The weights of the configured edges to area ``index``'s dendrite, each seeded by (seed, "edge", j), j its
        place in ``network.edges``."""
        out = []
        for j, spec in enumerate(self.config.network.edges):
            if spec.target == names[index] and spec.kind != "feedforward":
                source = self.layers[names.index(spec.source)]
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(stream_seed(self.config.seed, "edge", j))
                    edge = DendriticEdge(spec.source, source.out_shape[0], self.layers[index].spec.channels,
                                         spec.init_norm, self.layers[index].is_conv)
                out.append(edge.to(self.device))
        return out

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

    def _whiten_images(self, train: torch.Tensor, test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Whole-image ZCA (Miconi's notebook): one D x D matrix fitted on training images, applied to both stores."""
        entries = int(torch.tensor(train.shape[1:]).prod())
        if entries > MAX_IMAGE_ENTRIES:
            raise ConfigError(f"data.normalize: 'zca_image' builds a D x D matrix over whole stimuli and allows "
                              f"D <= {MAX_IMAGE_ENTRIES}; these have D = {entries} ({tuple(train.shape[1:])}): "
                              "use 'zca' (patch whitening) or set glimpse.size")
        zca = fit_image_zca(train, self.config.data.zca_eps, N_IMAGES, generator(self.config.seed, "zca"))
        return whiten_images(train, zca), whiten_images(test, zca)

    def _layer_specs(self) -> list[LayerSpec]:
        """``network.layers``, or the preset's layers when it is empty."""
        network = self.config.network
        if network.layers:
            return network.layers
        if network.preset not in PRESETS:
            raise ConfigError(f"network.preset: unknown value {network.preset!r}; valid choices: {', '.join(PRESETS)}")
        return PRESETS[network.preset]

    def _calibration_glimpses(self, n_stimuli: int = 64) -> torch.Tensor:
        """Every grid glimpse of ``n_stimuli`` training stimuli spread over the store (fixed, seed-free)."""
        idx = torch.linspace(0, len(self.train_labels) - 1, min(n_stimuli, len(self.train_labels))).long()
        return self.modality.grid_glimpses(self.train_store, idx)
