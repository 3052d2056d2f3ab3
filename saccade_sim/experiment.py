"""Build and run an experiment from a configuration: data -> modality -> eye -> layer agents -> probe.

    exp = Experiment({"rule": {"name": "oja"}, "run": {"events": 2000}})
    results = exp.run()
    exp.save("runs/oja")
"""
from __future__ import annotations

import copy
import dataclasses
import random
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from agents.agent import LayerAgent, make_optimizer, make_scheduler
from agents.dendrites import DendriticEdge
from agents.layers import PRESETS, Layer, build_layers, calibrate, needs_calibration

from . import datasets, distributed, io, plugins, provenance, runfolder  # noqa: F401  (plugins: registers the built-ins)
from .analysis.probe import grid_features, linear_probe, ridge_probe
from .config import Config, resolve
from .errors import ConfigError, DataError
from .asynchronous import AsynchronousEye
from .eye import Eye
from .oculomotor import ScanpathTrace, check_asynchronous
from .hostsync import deliberate
from .monitors import build_monitors, save_recordings
from .progress import bar as progress_bar
from .registry import MODALITIES, POLICIES, RULES
from .seeding import generator, stream_seed
from .simulation import Simulation
from .wiring import network_edges
from .whitening import MAX_IMAGE_ENTRIES, N_IMAGES, N_PATCHES, fit_image_zca, fit_zca_kernel, whiten, whiten_images

#: results.json fields that differ between two runs of one config: timings and the provenance (date, command)
TIMING_FIELDS = ("wall_s", "glimpses_per_s", "probe_wall_s", "decoding_wall_s", "provenance")
CHECKPOINT_FORMAT = 1  #: version of the checkpoint layout written by :meth:`Experiment.state_dict`


def rng_states() -> dict[str, Any]:
    """The global RNGs (torch CPU and CUDA, numpy, random), for plugins that draw from them."""
    np_state = np.random.get_state()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
            "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
            "random": random.getstate()}


def set_rng_states(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, key, *rest = state["numpy"]
    np.random.set_state((kind, key.numpy().astype(np.uint32), *rest))
    random.setstate(state["random"])


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


class Experiment:
    """Everything one run needs, built from a :class:`Config` (or a TOML-shaped dict).

    ``train`` (and optionally ``test``): map-style torch datasets of (stimulus, label) pairs to use instead of
    ``data.source`` (which then reads ``python:CLASSNAME``; see :func:`saccade_sim.datasets.from_dataset`)."""

    def __init__(self, config: Config | dict[str, Any] | None = None, train: Any = None, test: Any = None) -> None:
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

        self.layers = self._build_layers()
        if any(needs_calibration(layer.spec) for layer in self.layers):
            calibrate(self.layers, self._calibration_glimpses())
        self.initial_layers = copy.deepcopy(self.layers)
        rule_cls = RULES.get(cfg.rule.name, "rule.name")
        layer_rules = [cfg.rule_for_layer(i, len(self.layers)) for i in range(len(self.layers))]
        columns = np.cumsum([0] + [rule_cls.draws_needed(options) for _, options in layer_rules]).tolist()
        policy = POLICIES.get(cfg.eye.policy, "eye.policy")(cfg.policy)
        check_asynchronous(cfg.eye.motor, rule_cls, cfg.record.monitors)
        eye_cls = Eye if cfg.eye.motor.timing == "lockstep" else AsynchronousEye
        self.eye = eye_cls(self.modality, self.eye_store, self.eye_labels, policy, cfg.eye, cfg.seed,
                           self.world.shards(cfg.eye.shards), draws=columns[-1])
        names = [f"layer{i + 1}" for i in range(len(self.layers))]
        self.edges = network_edges(names, [layer.spec.delay_ms for layer in self.layers], cfg.network.edges)
        self.agents = []
        for i, (layer, (settings, options)) in enumerate(zip(self.layers, layer_rules)):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(stream_seed(cfg.seed, "rule", i))
                rule = rule_cls(layer, options, i, len(self.layers)).to(self.device)
            rule.bind(self.modality.space, slice(columns[i], columns[i + 1]), self.eye.per_shard)
            dendrites = self._dendrites(names, i)
            params = list(layer.parameters()) + list(rule.parameters()) + [e.weight for e in dendrites]
            opt = make_optimizer(params, settings.optimizer, settings.lr, settings.weight_decay)
            scheduler = None
            if settings.schedule.kind != "constant" or settings.schedule.warmup:
                scheduler = make_scheduler(opt, settings.schedule, cfg.run.events // settings.update_every)
            sync = distributed.make_sync(params, cfg.distributed, self.world,
                                         [layer.transmit_mean] if layer.spec.center else [])
            self.agents.append(LayerAgent(names[i], layer, rule, opt, sync, scheduler, settings.update_every, dendrites))
        if cfg.run.compile != "none":
            self._compile(cfg.run.compile)
        self.attachments: list[Callable[[Simulation], Any]] = []
        self.stateful: dict[str, Any] = {}
        self.simulation = self._new_simulation(0.0)
        self.every(cfg.run.check_every, self._check)
        self.monitors = build_monitors(cfg.record.monitors, self.agents, self.attach, self.device)
        for monitor in self.monitors:
            self.register_state(f"monitor:{monitor.name}", monitor)
        if cfg.record.scanpath:  # the fixations the Eye emits (host-side: what it drew on the CPU)
            self.eye.trace = ScanpathTrace(cfg.record.scanpath, self.modality.space.grid.shape[1])
            self.register_state("scanpath", self.eye.trace)
        if cfg.probe.every_ms:
            self.every(max(1, round(cfg.probe.every_ms / cfg.eye.fixation_ms)), self._probe_during_run)
        self.history: list[dict[str, Any]] = []
        self.decoding: list[dict[str, Any]] = []  #: per-layer probe accuracy over simulated time
        self.wall_s = 0.0  #: seconds simulating, the in-run probes excluded
        self.decoding_wall_s = 0.0  #: seconds spent in the in-run probes (``probe.every_ms``)
        #: called as ``log(kind, entry)`` with each history entry, in-run probe and the final results
        self.loggers: list[Callable[[str, dict[str, Any]], None]] = []

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
        """The weights of the configured edges to area ``index``'s dendrite, each seeded by (seed, "edge", j)."""
        out = []
        for j, spec in enumerate(self.config.network.edges):
            if spec.target == names[index]:
                source = self.layers[names.index(spec.source)]
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(stream_seed(self.config.seed, "edge", j))
                    edge = DendriticEdge(spec.source, source.out_shape[0], self.layers[index].spec.channels,
                                         spec.init_norm, self.layers[index].is_conv)
                out.append(edge.to(self.device))
        return out

    def _new_simulation(self, start_ms: float) -> Simulation:
        sim = Simulation(self.eye, self.agents, self.config.eye.fixation_ms,
                         [layer.spec.delay_ms for layer in self.layers], start_ms=start_ms, edges=self.edges)
        for start in self.attachments:
            start(sim)
        return sim

    def attach(self, start: Callable[[Simulation], Any]) -> None:
        """Call ``start(simulation)`` now and on every simulation rebuilt after a restore (monitors and
        hooks start their SimPy processes this way, so they survive a checkpoint)."""
        self.attachments.append(start)
        start(self.simulation)

    def every(self, n_events: int, fn: Any, channel: int = -1) -> None:
        """Call ``fn(glimpse)`` on every n-th event of ``channel`` (-1: the last layer's output), also
        after a restore from a checkpoint."""
        self.attach(lambda sim: sim.every(n_events, fn, channel))

    def register_state(self, name: str, obj: Any) -> None:
        """Save ``obj.state_dict()`` in every checkpoint and ``obj.load_state_dict(...)`` it on restore
        (recorders, monitors: anything whose buffers a resumed run must continue from)."""
        if name in self.stateful:
            raise ValueError(f"state {name!r} is already registered")
        self.stateful[name] = obj
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

    def _build_layers(self) -> list[Layer]:
        cfg = self.config
        specs = cfg.network.layers
        if not specs:
            if cfg.network.preset not in PRESETS:
                raise ConfigError(f"network.preset: unknown value {cfg.network.preset!r}; "
                                  f"valid choices: {', '.join(PRESETS)}")
            specs = PRESETS[cfg.network.preset]
        layers = build_layers(specs, self.modality.glimpse_shape, cfg.network.channels_last, seed=cfg.seed)
        return [layer.to(self.device) for layer in layers]

    def _calibration_glimpses(self, n_stimuli: int = 64) -> torch.Tensor:
        """Every grid glimpse of ``n_stimuli`` training stimuli spread over the store (fixed, seed-free)."""
        idx = torch.linspace(0, len(self.train_labels) - 1, min(n_stimuli, len(self.train_labels))).long()
        return self.modality.grid_glimpses(self.train_store, idx)

    # -- simulation ----------------------------------------------------------------------------
    def _check(self, glimpse) -> None:
        entry: dict[str, Any] = {"event": glimpse.index + 1, "time_ms": glimpse.time}
        with deliberate("divergence check every run.check_every events"):
            for agent in self.agents:
                for k, v in agent.check(glimpse.time, self.config.run.max_weight_norm).items():
                    entry[f"{agent.name}/{k}"] = v
        self.history.append(entry)
        self._log("history", entry)

    def _log(self, kind: str, entry: dict[str, Any]) -> None:
        for log in self.loggers:
            log(kind, entry)

    def log_to(self, out: str | Path) -> None:
        """Write live logs into ``out`` as ``[log]`` asks (TensorBoard events, history.csv) from now on; the run
        folder of ``saccade-sim run`` gets them without this call."""
        from .logs import RunLog

        if self.world.is_main:
            Path(out).mkdir(parents=True, exist_ok=True)
            self.loggers.append(RunLog(out, self.config.log, self.eye.event, self.history))

    def simulate(self, events: int | None = None, progress: bool | None = None,
                 stop: Callable[[], bool] = lambda: False, pause_every: int = 0,
                 on_pause: Callable[[], None] | None = None) -> int:
        """Run ``events`` more glimpse events (default: what is left of ``run.events``) through the SimPy
        engine; returns how many ran. Stops early once ``stop()`` is true (checked before each event).
        With ``pause_every`` > 0, ``on_pause()`` is called every ``pause_every`` events (counted from event
        0), when no event is in flight (e.g. to write a checkpoint). Ends with a divergence check."""
        events = self.config.run.events - self.eye.event if events is None else events
        show = (self.config.run.progress if progress is None else progress) and self.world.is_main and events > 0
        bar = progress_bar(events * self.config.eye.batch, self.config.rule.name, show, unit="glimpse",
                           unit_scale=True)
        done = 0
        with bar:
            while done < events and not stop():
                chunk = events - done
                if pause_every:
                    chunk = min(chunk, pause_every - self.eye.event % pause_every)
                start, probing = time.perf_counter(), self.decoding_wall_s
                ran = self.simulation.run(chunk, tick=lambda: bar.update(self.config.eye.batch), stop=stop)
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
                self.wall_s += time.perf_counter() - start - (self.decoding_wall_s - probing)
                done += ran
                if ran == chunk and pause_every and self.eye.event % pause_every == 0 and on_pause is not None:
                    self.verify()
                    on_pause()
        self.verify()
        return done

    def verify(self) -> None:
        """Raise DivergenceError if any layer's weights are non-finite or exploded (no state changes)."""
        with deliberate("divergence check at the end of simulate"):
            for agent in self.agents:
                why = agent.diverged(self.config.run.max_weight_norm)
                if why:
                    raise agent.divergence_error(why, self.eye.time)

    # -- evaluation ----------------------------------------------------------------------------
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

    def probe_scores(self, layers: list[Layer], with_input: bool = True,
                     tick: Callable[[], Any] = lambda: None) -> list[float]:
        """Ridge-probe test accuracy of [input, layer 1, ...] of ``layers`` on the probe's splits (without the
        input, the costliest probe, when ``with_input`` is false); ``tick()`` after each batch and each fit."""
        p = self.config.probe
        tr = self.probe_indices(len(self.train_labels), p.train, "train")
        te = self.probe_indices(len(self.test_labels), p.test, "test")
        y_tr, y_te = self.train_labels.cpu()[tr], self.test_labels.cpu()[te]

        seed = stream_seed(self.config.seed, "probe", "linear")  # the linear readout's draws

        def fit(f_tr: list, f_te: list) -> list[float]:
            """Each feature set in turn, dropped once fitted."""
            scores = []
            for i in range(len(f_tr)):
                if p.classifier == "linear":
                    scores.append(linear_probe(f_tr[i], y_tr, f_te[i], y_te, p.epochs, seed, device=self.device)["accuracy"])
                else:
                    scores.append(ridge_probe(f_tr[i], y_tr, f_te[i], y_te, solver=p.solver)["accuracy"])
                f_tr[i] = f_te[i] = None
                tick()
            return scores

        # the layers first; the raw glimpses (as many features as the largest layer, and no forward pass) after
        scores = fit(self.features(layers, self.train_store, tr, False, tick),
                     self.features(layers, self.test_store, te, False, tick))
        if with_input:
            scores.insert(0, fit(self.features([], self.train_store, tr, True, tick),
                                 self.features([], self.test_store, te, True, tick))[0])
        return scores

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
        tr = self.probe_indices(len(self.train_labels), p.train, "train")
        te = self.probe_indices(len(self.test_labels), p.test, "test")
        names = [a.name for a in self.agents]
        batches = -(-len(tr) // p.batch) - (-len(te) // p.batch)
        # feature batches: trained layers, raw input, random layers; then one fit per feature set
        with progress_bar(3 * batches + 2 * len(names) + 1, "probe", progress, unit="step") as bar:
            trained = self.probe_scores(self.layers, tick=bar.update)
            random = self.probe_scores(self.initial_layers, with_input=False, tick=bar.update)
        return {"layers": dict(zip(names, trained[1:])),
                "baselines": {"input": trained[0], "random": dict(zip(names, random))},
                "n_train": len(tr), "n_test": len(te), "chance": 1.0 / len(self.split.classes)}

    def run(self, progress: bool | None = None) -> dict[str, Any]:
        """Simulate ``run.events`` events, then probe every layer; returns the ``results.json`` tree."""
        self.simulate(progress=progress)
        start = time.perf_counter()
        show = self.config.run.progress if progress is None else progress
        probe = self.probe(show) if self.config.probe.enabled and self.world.is_main else {}
        self.results = self._results(probe, time.perf_counter() - start)
        self._log("results", self.results)
        return self.results

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

    # -- persistence ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue bit-identically: weights (current and initial), rule and optimiser
        states, every RNG state, the eye's stream position, the clock, the history and registered states.
        Plain containers of tensors and numbers only (loadable with ``weights_only``)."""
        return {
            "format": CHECKPOINT_FORMAT,
            "config": self.config.to_dict(),
            "agents": [self._agent_state(a) for a in self.agents],
            "initial_layers": [layer.state_dict() for layer in self.initial_layers],
            "eye": distributed.gather_shards(self.eye.state_dict(), self.world),
            "clock_ms": float(self.simulation.env.now),
            "rng": rng_states(),
            "history": self.history,
            "wall_s": self.wall_s,
            "decoding_wall_s": self.decoding_wall_s,
            "stateful": {name: obj.state_dict() for name, obj in self.stateful.items()},
            "decoding": self.decoding,
        }

    def _agent_state(self, agent: LayerAgent) -> dict[str, Any]:
        """``agent.state_dict()`` with the rule's per-eye buffers (``Rule.eye_buffers``, dim 1 = eyes) as
        {shard id: that shard's eyes}, gathered from every rank (a collective in a distributed run)."""
        state = agent.state_dict()
        rule = state["rule"]
        for name in agent.rule.eye_buffers:
            if rule[name].numel():
                chunks = rule[name].split(self.eye.per_shard, 1)
                rule[name] = distributed.gather_keyed(
                    {s: c.to("cpu", copy=True) for s, c in zip(self.eye.shard_ids, chunks)}, self.world)
        return state

    def _own_eyes(self, agent: LayerAgent, state: dict[str, Any]) -> dict[str, Any]:
        """The inverse of :meth:`_agent_state` for this process: the per-eye buffers of its own shards."""
        rule = state["rule"].copy()
        for name in agent.rule.eye_buffers:
            if isinstance(rule.get(name), dict):
                rule[name] = torch.cat([rule[name][s] for s in self.eye.shard_ids], 1)
        return {**state, "rule": rule}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output into this (freshly built, same-config) experiment and rebuild
        the SimPy processes at the saved clock."""
        if len(state["agents"]) != len(self.agents):
            raise ValueError(f"checkpoint has {len(state['agents'])} layers, this network {len(self.agents)}")
        self.eye.load_state_dict(state["eye"])  # first: it names a missing shard
        for agent, s in zip(self.agents, state["agents"]):
            agent.load_state_dict(self._own_eyes(agent, s))
        for layer, s in zip(self.initial_layers, state["initial_layers"]):
            layer.load_state_dict(s)
        set_rng_states(state["rng"])
        self.history = list(state["history"])
        self.decoding = list(state["decoding"])
        self.wall_s = state["wall_s"]
        self.decoding_wall_s = state.get("decoding_wall_s", 0.0)  # absent from checkpoints of 0.1.0
        missing = sorted(set(self.stateful) - set(state["stateful"]))
        if missing:
            raise ValueError(f"checkpoint lacks the registered state {missing[0]!r}")
        for name, obj in self.stateful.items():
            obj.load_state_dict(state["stateful"][name])
        self.simulation = self._new_simulation(state["clock_ms"])

    def save(self, out: str | Path) -> Path:
        """Write ``config.json``, ``results.json``, ``checkpoint.pt``, ``history.npz`` and plots into ``out``.
        In a distributed run every rank calls it (the eye state is gathered) and only rank 0 writes."""
        from .plots import learning_curve

        state = self.state_dict()
        out = Path(out)
        if not self.world.is_main:
            return out
        runfolder.create(out)
        with runfolder.lock(out):  # one writer per folder (re-entrant: the CLI already holds it)
            io.write_json(out / "config.json", self.config.to_dict())
            io.save_torch(out / "checkpoint.pt", state)
            keys = sorted({k for h in self.history for k in h})
            io.save_npz(out / "history.npz",
                        {k.replace("/", "."): np.array([h.get(k, np.nan) for h in self.history]) for k in keys})
            learning_curve(self.history, out / "learning_curve.png")
            save_recordings(self.monitors, out)
            if self.eye.trace is not None:
                io.save_npz(out / runfolder.SCANPATH, self.eye.trace.arrays())
            if self.decoding:
                io.write_json(out / runfolder.DECODING, self.decoding)
            if hasattr(self, "results"):
                io.write_json(out / "results.json", self.results)
        return out
