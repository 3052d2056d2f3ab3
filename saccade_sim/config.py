"""Experiment configuration: TOML in, a fully resolved and validated tree out.

Every table is a dataclass whose fields are the valid keys. Plugin options live beside the key that
selects the plugin: ``[glimpse]`` holds the options of ``data.modality``, ``[eye]`` those of
``eye.policy`` and ``[rule]`` those of ``rule.name``. Unknown keys, wrong types and unknown plugin names
raise :class:`ConfigError` naming the dotted key and the valid choices.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, from PyPI
    import tomli as tomllib

from .distributed import DistributedConfig
from .errors import ConfigError
from .registry import DATASETS, MODALITIES, POLICIES, RULES
from .specs import (EYE_QUANTITIES, INPUT_NORMS, LAYER_QUANTITIES, SAFE_NAME, DataConfig, EdgeSpec, EyeConfig,
                    LayerSpec, LogConfig, MonitorSpec, check_positive)


@dataclass
class NetworkConfig:
    preset: str = "small"  #: used when ``layers`` is empty
    layers: list[LayerSpec] = field(default_factory=list)
    channels_last: bool = True  #: memory format for conv layers (faster on CPU)
    #: the network's edges (``[[network.edges]]``): feedforward edges (none: the chain eye -> layer1 -> layer2 ...;
    #: declared: the whole feedforward graph) and top-down and lateral edges to the areas' dendrites
    edges: list[EdgeSpec] = field(default_factory=list)


@dataclass
class ScheduleConfig:
    """The learning rate over optimiser steps e (``[rule.schedule]``; one per event unless ``rule.update_every``),
    as a factor of ``rule.lr``: 0 for e < ``hold``; then with e' = e - hold, linear warm-up ``(e' + 1) / warmup``
    for e' < ``warmup``, then with t = e' - warmup, T = horizon - hold - warmup:
    ``constant`` 1; ``cosine`` ``min_factor + (1 - min_factor) (1 + cos(pi min(t, T) / T)) / 2``;
    ``step`` ``gamma ** (t // step_every)``."""

    kind: str = "constant"  #: "constant", "cosine" or "step"
    #: first steps at lr 0: the weights keep still while the rest of the rule (e.g. adaptive thresholds) runs
    #: (Miconi's notebook: 201 batches); an adaptive optimiser's moments still accumulate
    hold: int = 0
    warmup: int = 0  #: steps of linear warm-up from lr / warmup to lr
    horizon: int = 0  #: cosine: steps until the floor is reached (0 = run.events / update_every at the run's start)
    min_factor: float = 0.0  #: cosine: the floor, as a fraction of lr
    step_every: int = 1000  #: step: steps between decays
    gamma: float = 0.5  #: step: factor per decay

    def validate(self, path: str) -> None:
        _choice(self.kind, ("constant", "cosine", "step"), f"{path}.kind")
        for key in ("hold", "warmup", "horizon"):
            check_positive(getattr(self, key), f"{path}.{key}", allow_zero=True)
        check_positive(self.step_every, f"{path}.step_every")
        if not 0.0 <= self.min_factor <= 1.0:
            raise ConfigError(f"{path}.min_factor: must be in [0, 1], got {self.min_factor!r}")
        if not 0.0 < self.gamma <= 1.0:
            raise ConfigError(f"{path}.gamma: must be in (0, 1], got {self.gamma!r}")


@dataclass
class RuleConfig:
    name: str = "clapp"
    lr: float | None = None  #: learning rate (default: the rule's ``default_lr``)
    optimizer: str | None = None  #: "sgd", "adam" or "adamw" (default: the rule's ``default_optimizer``)
    weight_decay: float = 0.0
    update_every: int = 1  #: events whose changes are summed into one optimiser step (a raster pass: the reference's batch step)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    #: per-layer overrides (``[[rule.layers]]``, one table per layer, in order): any key of ``[rule]`` but
    #: ``name`` and ``layers`` (lr, optimizer, weight_decay, schedule, the rule's options)
    layers: list[dict] = field(default_factory=list)


@dataclass
class RunConfig:
    events: int = 40000  #: glimpse events to simulate (each carries ``eye.batch`` glimpses)
    progress: bool = True
    check_every: int = 100  #: events between divergence checks (each costs one host sync)
    checkpoint_every: int = 0  #: events between checkpoints (0 = only at the end)
    max_weight_norm: float = 1e4  #: a layer whose weight norm exceeds this has diverged
    #: torch CPU threads, applied by ``saccade-sim run`` (also ``--threads N``; 0 = torch's default, one per
    #: core). Default 1: on 2 cores, 2 threads simulated the default experiment 18x slower (docs/threads.md)
    threads: int = 1
    compile: str = "none"  #: "none", or each layer's per-event step through torch.compile: a mode (COMPILE_MODES)


#: ``run.compile`` values: torch.compile modes ("reduce-overhead" captures CUDA graphs on a GPU) and "aot_eager"
#: (graphs captured and run eagerly, no code generation: checks the capture quickly)
COMPILE_MODES = ("none", "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs", "aot_eager")


@dataclass
class ProbeConfig:
    enabled: bool = True
    train: int = 1000  #: at most this many training stimuli for the probe (0 = all)
    test: int = 500  #: at most this many test stimuli (0 = all)
    pool: int = 2  #: each glimpse's layer output is average-pooled to pool x pool
    aggregate: str = "concat"  #: "concat" or "mean" over the stimulus's glimpse grid
    batch: int = 16  #: stimuli per forward chunk (memory grows with batch x gaze-grid size)
    every_ms: float = 0.0  #: also probe the layers every this many simulated ms (a decoding curve; 0 = off)
    #: "ridge" (penalty by leave-one-out) or "linear" (SoftHebb's released readout: softmax, dropout, Adam)
    classifier: str = "ridge"
    epochs: int = 50  #: classifier = "linear": training epochs
    #: classifier = "ridge": "kernel" (eigendecomposition of the items' Gram matrix) or "auto" (of the features'
    #: when there are fewer features than items: the same classifier, much cheaper for large probes)
    solver: str = "kernel"


@dataclass
class RecordConfig:
    monitors: list[MonitorSpec] = field(default_factory=list)  #: nothing is recorded unless listed
    scanpath: int = 0  #: keep the newest this many fixations of every eye in RUN_DIR/scanpath.npz (0 = off)


@dataclass
class Config:
    seed: int = 0
    device: str = "cpu"
    data: DataConfig = field(default_factory=DataConfig)
    glimpse: Any = None  #: options of the modality plugin
    eye: EyeConfig = field(default_factory=EyeConfig)
    policy: Any = None  #: options of the saccade policy plugin (written in ``[eye]``)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    rule: RuleConfig = field(default_factory=RuleConfig)
    rule_options: Any = None  #: options of the rule plugin (written in ``[rule]``)
    #: (rule settings, rule options) of each layer with ``[[rule.layers]]`` applied (empty: all use ``[rule]``)
    layer_rules: list = field(default_factory=list)
    run: RunConfig = field(default_factory=RunConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)
    record: RecordConfig = field(default_factory=RecordConfig)
    log: LogConfig = field(default_factory=LogConfig)

    def to_dict(self) -> dict[str, Any]:
        """The resolved tree, plugin options merged back into their tables (what ``config.json`` holds)."""
        out = {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}
        out["eye"].update(out.pop("policy"))
        out["rule"].update(out.pop("rule_options"))
        del out["layer_rules"]
        return out

    def rule_for_layer(self, index: int, n_layers: int) -> tuple[RuleConfig, Any]:
        """The rule settings and options of layer ``index`` of ``n_layers`` (``[rule]`` with its
        ``[[rule.layers]]`` entry applied)."""
        if not self.layer_rules:
            return self.rule, self.rule_options
        if len(self.layer_rules) != n_layers:
            raise ConfigError(f"rule.layers: {len(self.layer_rules)} entries for a network of {n_layers} layers; "
                              "give one table per layer, or none")
        return self.layer_rules[index]


class NoOptions:
    """Options of a plugin that takes none."""


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, NoOptions) or value is None:
        return {}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(tp):
            return None
        options = [t for t in typing.get_args(tp) if t is not type(None)]
        for option in options[:-1]:
            try:
                return _coerce(value, option, key)
            except ConfigError:
                pass
        if len(options) > 1 and not isinstance(value, options[-1]):
            raise ConfigError(f"{key}: expected {' or '.join(t.__name__ for t in options)}, got {value!r}")
        return _coerce(value, options[-1], key)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (item_tp,) = typing.get_args(tp)
        return [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a table, got {value!r}")
        return build(tp, value, key)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{key}: must be a finite number, got {value!r}")
    if tp is Any or isinstance(value, tp) and not (tp is int and isinstance(value, bool)):
        return value
    raise ConfigError(f"{key}: expected {'a table' if tp is dict else getattr(tp, '__name__', tp)}, got {value!r}")


def build(cls: type, table: dict[str, Any], path: str) -> Any:
    """Instantiate dataclass ``cls`` from ``table``, every value type-checked; unknown keys are errors."""
    if not dataclasses.is_dataclass(cls):
        if table:
            raise ConfigError(f"{path}: takes no options, got {', '.join(sorted(table))}")
        return NoOptions()
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(table) - set(names))
    if unknown:
        raise ConfigError(
            f"unknown key {path}.{unknown[0]}; valid keys in [{path}]: {', '.join(names)}"
        )
    kwargs = {k: _coerce(v, hints[k], f"{path}.{k}" if path else k) for k, v in table.items()}
    obj = cls(**kwargs)
    check = getattr(obj, "validate", None)
    if check is not None:
        check(path)
    return obj


def _split(table: dict[str, Any], base: type) -> tuple[dict[str, Any], dict[str, Any]]:
    names = {f.name for f in dataclasses.fields(base)}
    return {k: v for k, v in table.items() if k in names}, {k: v for k, v in table.items() if k not in names}


def _with_plugin(table: dict, base: type, registry, path: str, selector: str):
    """Split ``table`` into ``base``'s fields and the selected plugin's ``Options``, building both."""
    own, rest = _split(table, base)
    base_obj = build(base, own, path)
    plugin = registry.get(getattr(base_obj, selector), f"{path}.{selector}")
    options_cls = getattr(plugin, "Options", NoOptions)
    valid = [f.name for f in dataclasses.fields(base)]
    if dataclasses.is_dataclass(options_cls):
        valid += [f.name for f in dataclasses.fields(options_cls)]
    unknown = sorted(set(rest) - set(valid))
    if unknown:
        raise ConfigError(f"unknown key {path}.{unknown[0]}; valid keys in [{path}] for "
                          f"{selector} {getattr(base_obj, selector)!r}: {', '.join(valid)}")
    return base_obj, build(options_cls, rest, path)


def _rule(table: dict[str, Any], path: str) -> tuple[RuleConfig, Any]:
    """``[rule]`` (or one layer's merged table) built and its defaults filled from the rule plugin."""
    rule, options = _with_plugin(table, RuleConfig, RULES, path, "name")
    plugin = RULES.get(rule.name)
    if rule.lr is None:
        rule.lr = plugin.default_lr
    if rule.optimizer is None:
        rule.optimizer = plugin.default_optimizer
    return rule, options


def _layer_rule(base: dict[str, Any], entry: Any, index: int) -> tuple[RuleConfig, Any]:
    """Layer ``index``'s rule: the ``[rule]`` table with the keys of its ``[[rule.layers]]`` entry replaced."""
    path = f"rule.layers[{index}]"
    if not isinstance(entry, dict):
        raise ConfigError(f"{path}: expected a table, got {entry!r}")
    for key in ("name", "layers"):
        if key in entry:
            raise ConfigError(f"{path}.{key}: cannot be set per layer (one rule for the whole network)")
    merged = {k: v for k, v in base.items() if k != "layers"}
    if isinstance(merged.get("schedule"), dict) and isinstance(entry.get("schedule"), dict):
        entry = {**entry, "schedule": {**merged["schedule"], **entry["schedule"]}}
    return _rule({**merged, **entry}, path)


TOP_KEYS = ("seed", "device", "data", "glimpse", "eye", "network", "rule", "run", "probe", "distributed", "record",
            "log")


def resolve(raw: dict[str, Any]) -> Config:
    """Validate a raw (TOML-shaped) tree and fill every default."""
    raw = dict(raw)
    unknown = sorted(set(raw) - set(TOP_KEYS))
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]}; valid top-level keys: {', '.join(TOP_KEYS)}")
    for section in TOP_KEYS[2:]:
        if section in raw and not isinstance(raw[section], dict):
            raise ConfigError(f"{section}: expected a table, got {raw[section]!r}")
    if isinstance(raw.get("run"), dict) and "glimpses" in raw["run"]:
        raise ConfigError("run.glimpses: renamed run.events (it counts glimpse events, each of eye.batch glimpses)")
    from . import plugins  # noqa: F401  (registers the built-in plugins)

    top = build(_Top, {k: raw[k] for k in ("seed", "device") if k in raw}, "")
    data = build(DataConfig, raw.get("data", {}), "data")
    absolute_paths(data)
    modality = MODALITIES.get(data.modality, "data.modality")
    glimpse = build(getattr(modality, "Options", NoOptions), raw.get("glimpse", {}), "glimpse")
    eye, policy = _with_plugin(raw.get("eye", {}), EyeConfig, POLICIES, "eye", "policy")
    rule, rule_options = _rule(raw.get("rule", {}), "rule")
    layer_rules = [_layer_rule(raw.get("rule", {}), entry, i) for i, entry in enumerate(rule.layers)]
    cfg = Config(
        seed=top.seed, device=top.device, data=data, glimpse=glimpse, eye=eye, policy=policy,
        network=build(NetworkConfig, raw.get("network", {}), "network"), rule=rule,
        rule_options=rule_options, layer_rules=layer_rules, run=build(RunConfig, raw.get("run", {}), "run"),
        probe=build(ProbeConfig, raw.get("probe", {}), "probe"),
        distributed=build(DistributedConfig, raw.get("distributed", {}), "distributed"),
        record=build(RecordConfig, raw.get("record", {}), "record"),
        log=build(LogConfig, raw.get("log", {}), "log"),
    )
    _check_values(cfg)
    return cfg


#: ``data.source`` prefixes that name a dataset, not a file: torchvision, torchaudio, a Dataset given in Python
SOURCE_PREFIXES = ("tv:", "ta:", "python:")


def absolute_paths(data: DataConfig) -> None:
    """Make ``data.source`` (when it is a path) and ``data.root`` absolute, relative ones taken from the current
    directory, so that a saved ``config.json`` names the same files from any directory."""
    if data.source and data.source not in DATASETS and not data.source.startswith(SOURCE_PREFIXES):
        data.source = os.path.abspath(os.path.expanduser(data.source))
    if data.root:
        data.root = os.path.abspath(os.path.expanduser(data.root))


@dataclass
class _Top:
    seed: int = 0
    device: str = "cpu"


def _choice(value: str, choices: tuple[str, ...], key: str) -> None:
    if value not in choices:
        raise ConfigError(f"{key}: unknown value {value!r}; valid choices: {', '.join(choices)}")


def _check_values(cfg: Config) -> None:
    check_positive(cfg.eye.batch, "eye.batch")
    check_positive(cfg.eye.fixation_ms, "eye.fixation_ms")
    check_positive(cfg.eye.dwell, "eye.dwell", allow_zero=True)
    if isinstance(cfg.eye.shards, str):
        _choice(cfg.eye.shards, ("auto",), "eye.shards")
    else:
        check_positive(cfg.eye.shards, "eye.shards")
        if cfg.eye.batch % cfg.eye.shards:
            raise ConfigError(f"eye.shards: must divide eye.batch ({cfg.eye.batch}), got {cfg.eye.shards}")
    if not 0.0 <= cfg.eye.jump_prob <= 1.0:
        raise ConfigError(f"eye.jump_prob: must be in [0, 1], got {cfg.eye.jump_prob!r}")
    check_positive(cfg.record.scanpath, "record.scanpath", allow_zero=True)
    check_positive(cfg.run.events, "run.events")
    check_positive(cfg.run.check_every, "run.check_every")
    check_positive(cfg.run.checkpoint_every, "run.checkpoint_every", allow_zero=True)
    _choice(cfg.run.compile, COMPILE_MODES, "run.compile")
    check_positive(cfg.run.max_weight_norm, "run.max_weight_norm")
    check_positive(cfg.run.threads, "run.threads", allow_zero=True)
    for i, (rule, _) in enumerate([(cfg.rule, None), *cfg.layer_rules]):
        key = "rule" if i == 0 else f"rule.layers[{i - 1}]"
        check_positive(rule.lr, f"{key}.lr", allow_zero=True)
        check_positive(rule.update_every, f"{key}.update_every")
        _choice(rule.optimizer, ("sgd", "adam", "adamw"), f"{key}.optimizer")
    check_positive(cfg.probe.pool, "probe.pool")
    check_positive(cfg.probe.batch, "probe.batch")
    check_positive(cfg.probe.train, "probe.train", allow_zero=True)
    check_positive(cfg.probe.test, "probe.test", allow_zero=True)
    _choice(cfg.probe.aggregate, ("concat", "mean"), "probe.aggregate")
    _choice(cfg.probe.classifier, ("ridge", "linear"), "probe.classifier")
    check_positive(cfg.probe.epochs, "probe.epochs")
    _choice(cfg.probe.solver, ("kernel", "auto"), "probe.solver")
    check_positive(cfg.probe.every_ms, "probe.every_ms", allow_zero=True)
    _choice(cfg.data.normalize, ("standard", "zca", "zca_image", "none"), "data.normalize")
    check_positive(cfg.data.zca_size, "data.zca_size")
    check_positive(cfg.data.zca_eps, "data.zca_eps")
    check_positive(cfg.data.crop_size, "data.crop_size")
    check_positive(cfg.data.crops_per_photo, "data.crops_per_photo")
    check_positive(cfg.data.train_limit, "data.train_limit", allow_zero=True)
    check_positive(cfg.data.test_limit, "data.test_limit", allow_zero=True)
    if cfg.data.test_groups and not cfg.data.group_pattern:
        raise ConfigError("data.test_groups: needs data.group_pattern (the regex that finds each file's group)")
    if not 0.0 < cfg.data.test_fraction < 1.0:
        raise ConfigError(f"data.test_fraction: must be in (0, 1), got {cfg.data.test_fraction!r}")
    for i, spec in enumerate(cfg.network.layers):
        key = f"network.layers[{i}]"
        _choice(spec.kind, ("conv", "dense"), f"{key}.kind")
        _choice(spec.pool_kind, ("max", "avg"), f"{key}.pool_kind")
        for name in ("channels", "kernel", "stride", "pool"):
            check_positive(getattr(spec, name), f"{key}.{name}")
        check_positive(spec.delay_ms, f"{key}.delay_ms", allow_zero=True)
        check_positive(spec.kwta, f"{key}.kwta", allow_zero=True)
        if not 0.0 <= spec.prune < 1.0:
            raise ConfigError(f"{key}.prune: must be in [0, 1), got {spec.prune!r}")
        if not 0.0 <= spec.center <= 1.0:
            raise ConfigError(f"{key}.center: must be in [0, 1] (0 = off), got {spec.center!r}")
        _choice(spec.padding_mode, ("zeros", "reflect"), f"{key}.padding_mode")
        _choice(spec.input_norm, INPUT_NORMS, f"{key}.input_norm")
        _choice(spec.init, ("default", "normal", "normal_unit"), f"{key}.init")
        for name in ("pool_stride", "pool_padding"):
            check_positive(getattr(spec, name), f"{key}.{name}", allow_zero=True)
        for name in ("power", "init_norm"):
            check_positive(getattr(spec, name), f"{key}.{name}")
        if 2 * spec.pool_padding > spec.pool:
            raise ConfigError(f"{key}.pool_padding: must be at most half the pool window ({spec.pool}), "
                              f"got {spec.pool_padding}")
        if spec.delay_ms >= cfg.eye.fixation_ms:
            raise ConfigError(f"{key}.delay_ms: must be shorter than eye.fixation_ms "
                              f"({cfg.eye.fixation_ms}), got {spec.delay_ms}")
    for i, spec in enumerate(cfg.record.monitors):
        if spec.eyes and max(spec.eyes) >= cfg.eye.batch:
            raise ConfigError(f"record.monitors[{i}].eyes: eye {max(spec.eyes)} does not exist; eye.batch is "
                              f"{cfg.eye.batch} (eyes 0-{cfg.eye.batch - 1})")
    if not (cfg.device == "cpu" or cfg.device.startswith("cuda")):
        raise ConfigError(f"device: unknown value {cfg.device!r}; valid choices: cpu, cuda, cuda:N")


def parse_value(text: str) -> Any:
    """A ``--set`` value: a TOML literal (number, bool, string, array, inline table) or a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def set_key(raw: dict[str, Any], key: str, value: Any, where: str = "--set") -> None:
    """Set dotted ``key`` (``a.b.c``) of the raw tree to ``value`` in place, creating tables on the way."""
    parts = key.strip().split(".")
    node = raw
    for i, part in enumerate(parts[:-1]):
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{where} {key}: {'.'.join(parts[: i + 1])} is not a table")
    node[parts[-1]] = value


def apply_override(raw: dict[str, Any], assignment: str) -> None:
    """Apply ``a.b.c=value`` (the value a TOML literal or a bare string) to the raw tree in place."""
    if "=" not in assignment:
        raise ConfigError(f"--set {assignment!r}: expected key=value")
    key, text = assignment.split("=", 1)
    set_key(raw, key, parse_value(text.strip()))


def read_tree(path: str | Path) -> dict[str, Any]:
    """The raw tree of a config file: JSON when it ends in ``.json`` (e.g. a run's ``config.json``), else TOML."""
    path = Path(path)
    kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
    try:
        text = path.read_text()
        tree = json.loads(text) if kind == "JSON" else tomllib.loads(text)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a config file (a run folder's config.json re-runs it)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid {kind}: {exc}") from None
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: expected a table of settings at the top, got {type(tree).__name__}")
    return tree


def load(path: str | Path | None = None, overrides: Sequence[str] = ()) -> Config:
    """Read a TOML or JSON config file (or start from defaults), apply ``key=value`` overrides, resolve."""
    raw: dict[str, Any] = read_tree(path) if path is not None else {}
    for assignment in overrides:
        apply_override(raw, assignment)
    return resolve(raw)


def from_dict(tree: dict[str, Any]) -> Config:
    """Resolve a tree shaped like ``config.json`` (or any partial TOML-shaped dict)."""
    return resolve(tree)
