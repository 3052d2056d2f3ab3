"""The specs of the parts: the dataclasses a modality's data, an eye, a layer, a monitor and the logs are
built from. A part takes its spec, never the whole configuration; :mod:`saccade_sim.config` reads them from
TOML (``[data]``, ``[eye]``, ``[[network.layers]]``, ``[[record.monitors]]``, ``[log]``) and validates them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import ConfigError


def check_positive(value: float, key: str, allow_zero: bool = False) -> None:
    """A ConfigError naming ``key`` unless ``value`` > 0 (>= 0 with ``allow_zero``)."""
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{key}: must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")


@dataclass
class DataConfig:
    modality: str = "image"
    source: str = "natural"  #: a registered dataset name, or a path to a .npz file or a folder
    root: str = ""  #: where torchvision/torchaudio datasets live (``source = "tv:MNIST"`` etc.)
    download: bool = False  #: let torchvision/torchaudio download into ``root``
    train_limit: int = 0  #: use at most this many training stimuli (0 = all)
    test_limit: int = 0  #: use at most this many test stimuli (0 = all)
    test_fraction: float = 0.2  #: held-out part when the source has no test split
    unlabelled: bool = True  #: the eyes also see the source's unlabelled stimuli (npz x_unlabelled, STL-10's unlabeled)
    label_pattern: str = ""  #: regex with one group applied to file names for labels (folders of files)
    group_pattern: str = ""  #: regex with one group giving each file's group (e.g. speaker): whole groups are held out
    test_groups: list[str] = field(default_factory=list)  #: groups held out for test (empty: test_fraction of groups)
    #: "standard" (zero mean, unit variance over the training store), "zca" (patch ZCA filter), "zca_image"
    #: (one ZCA matrix over whole images, each standardised first: Miconi's notebook) or "none"
    normalize: str = "standard"
    zca_size: int = 7  #: normalize = "zca": side of the training patches the whitening filter is fitted on
    #: regulariser: "zca": relative to the mean patch variance; "zca_image": added to the diagonal of
    #: T^T T / D as the notebook does (it uses 1e-3)
    zca_eps: float = 0.01
    crop_size: int = 64  #: unlabelled photographs or videos: side of the crops cut from them
    crops_per_photo: int = 250  #: unlabelled photographs or videos: crops per photo or video (train + test)

    def validate(self, path: str) -> None:
        for key in ("label_pattern", "group_pattern"):
            try:
                re.compile(getattr(self, key))
            except re.error as exc:
                raise ConfigError(f"{path}.{key}: not a valid regular expression {getattr(self, key)!r} "
                                  f"({exc})") from None


@dataclass
class MotorConfig:
    """``[eye.motor]``: how eyes move in time."""

    timing: str = "lockstep"  #: "lockstep" (every eye fixates eye.fixation_ms, in step) or "gamma" (saccade_sim.oculomotor)
    fixation_shape: float = 4.0  #: shape k of the gamma fixation durations (mean eye.fixation_ms)
    saccade_intercept_ms: float = 21.0  #: main sequence: duration of a saccade of 0 degrees
    saccade_slope_ms: float = 2.2  #: main sequence: ms per degree of amplitude
    pixels_per_degree: float = 4.0  #: stimulus pixels per degree of visual angle
    bin_ms: float = 10.0  #: eyes whose fixations end in one bin of this width form one event (<= intercept)
    drift_px: float = 0.0  #: fixational drift: sd in pixels after one second of fixation (0 = none)
    microsaccade_prob: float = 0.0  #: per fixation, probability that the next movement is a microsaccade
    microsaccade_px: int = 1  #: largest microsaccade step per spatial coordinate, in pixels

    def validate(self, path: str) -> None:
        if self.timing not in ("lockstep", "gamma"):
            raise ConfigError(f"{path}.timing: unknown value {self.timing!r}; valid choices: lockstep, gamma")
        for key in ("fixation_shape", "pixels_per_degree", "bin_ms", "microsaccade_px"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"{path}.{key}: must be > 0, got {getattr(self, key)!r}")
        for key in ("saccade_intercept_ms", "saccade_slope_ms", "drift_px"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{path}.{key}: must be >= 0, got {getattr(self, key)!r}")
        if not 0.0 <= self.microsaccade_prob <= 1.0:
            raise ConfigError(f"{path}.microsaccade_prob: must be in [0, 1], got {self.microsaccade_prob!r}")
        if self.timing == "gamma" and self.bin_ms > self.saccade_intercept_ms:
            raise ConfigError(f"{path}.bin_ms: must be at most saccade_intercept_ms ({self.saccade_intercept_ms:g}), "
                              f"the shortest saccade, so that an eye ends at most one fixation per bin; "
                              f"got {self.bin_ms:g}")


@dataclass
class EyeConfig:
    policy: str = "raster"
    batch: int = 16  #: B eyes moving in lockstep (the tensor batch)
    fixation_ms: float = 200.0  #: simulated duration of one fixation
    jump_prob: float = 0.3  #: per eye and fixation, probability of a saccade to another stimulus
    dwell: int = 0  #: fixations per stimulus before moving on (0 = one pass over the gaze grid)
    #: logical shards of the batch, each with its own seeded stimulus stream (distributed runs); "auto" = one
    #: per rank (1 in a single process), fixed at the start of the run (config.json records the number)
    shards: int | str = "auto"
    motor: MotorConfig = field(default_factory=MotorConfig)  #: ``[eye.motor]``: fixation and saccade timing

    def shard_count(self, ranks: int = 1) -> int:
        """``shards`` as a number: "auto" is one logical shard per rank."""
        return ranks if self.shards == "auto" else self.shards


@dataclass
class LayerSpec:
    kind: str = "conv"  #: "conv" or "dense"
    channels: int = 32  #: output channels (conv) or units (dense)
    kernel: int = 3
    stride: int = 1
    padding: int = -1  #: -1 = kernel // 2 ("same")
    pool: int = 1  #: pooling window applied to the transmitted output (1 = none)
    pool_kind: str = "max"  #: "max" or "avg"
    activation: str = "relu"
    bias: bool = False
    delay_ms: float = 0.0  #: conduction delay before this layer sees its input
    kwta: int = 0  #: transmit only the k largest a - threshold per position (hard k-WTA; 0 = off)
    prune: float = 0.0  #: fraction of connections removed by a fixed random mask (0 = none)
    center: float = 0.0  #: > 0: transmit each channel minus its running mean, updated at this rate per event
    pool_stride: int = 0  #: pooling stride (0 = the pooling window, non-overlapping)
    pool_padding: int = 0  #: pooling padding (max pooling pads with -inf, average pooling with zeros)
    padding_mode: str = "zeros"  #: "zeros" or "reflect" (the input is reflect-padded before the convolution)
    input_norm: str = "none"  #: "none", "batch" (BatchNorm without affine), "image" (per-sample standardisation), "unit"
    batch_norm: bool = False  #: BatchNorm with a learned affine map on the potential, before the activation
    power: float = 1.0  #: activation "triangle": y = relu(a - mean_c a) ** power
    negative_slope: float = 0.01  #: activation "leaky_relu": the slope for a < 0
    thresholded: bool = False  #: the activation and k-WTA see a - theta (the layer's adaptive thresholds)
    binarize: bool = False  #: transmit 1 where the output is > 0, else 0 (Miconi's binary winners)
    init: str = "default"  #: "default" (torch's), "normal" (N(0, init_norm^2 / fan_in)), "normal_unit" (rows of norm init_norm)
    init_norm: float = 1.0  #: init "normal": expected norm of each unit's weights; "normal_unit": their exact norm
    residual: bool = False  #: also transmit the input, zero-padded to the channels and average-pooled to the size


#: what ``input_norm`` can do to a layer's input before its weights see it
INPUT_NORMS = ("none", "batch", "image", "unit")

@dataclass
class MonitorSpec:
    """One recording (``[[record.monitors]]``): what to sample, how often, and how many samples to keep."""

    target: str = "layer1"  #: "eye" or a layer name ("layer1", ...)
    quantity: str = "activity"  #: eye: glimpse, gaze, modulator, stimulus; layer: activity, weights, dendrite, loss
    every: int = 1  #: sample every this many events (used when every_ms = 0)
    every_ms: float = 0.0  #: sample at most once per this many simulated ms (0 = use ``every``)
    max_len: int = 1000  #: ring-buffer length: the newest max_len samples are kept
    eyes: list[int] = field(default_factory=list)  #: record only these eyes of the batch (empty = all)
    name: str = ""  #: file name stem (default TARGET_QUANTITY): letters, digits, "_", "-", "." (not first)

    def validate(self, path: str) -> None:
        if self.name and not SAFE_NAME.fullmatch(self.name):
            raise ConfigError(f"{path}.name: {self.name!r} cannot be a file name (record_NAME.npz); use letters, "
                              "digits, '_', '-' and '.' (not first), at most 100 characters")
        valid = EYE_QUANTITIES if self.target == "eye" else LAYER_QUANTITIES
        if self.quantity not in valid:
            raise ConfigError(f"{path}.quantity: unknown value {self.quantity!r} for target {self.target!r}; "
                              f"valid choices: {', '.join(valid)}")
        for key in ("every", "max_len"):
            check_positive(getattr(self, key), f"{path}.{key}")
        check_positive(self.every_ms, f"{path}.every_ms", allow_zero=True)
        if any(e < 0 for e in self.eyes):
            raise ConfigError(f"{path}.eyes: eye indices must be >= 0, got {self.eyes}")


#: A name that is safe as (part of) a file name in the run folder.
SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}")
#: What a monitor can record from the eye's channel and from a layer's channel.
EYE_QUANTITIES = ("glimpse", "gaze", "modulator", "stimulus")
LAYER_QUANTITIES = ("activity", "weights", "dendrite", "loss", "modulator")

@dataclass
class LogConfig:
    """Live logs in the run folder, written while the run goes (``[log]``)."""

    tensorboard: bool = False  #: TensorBoard event files in RUN_DIR/tensorboard (needs the tensorboard package)
    csv: bool = False  #: RUN_DIR/history.csv, one line per history entry (every run.check_every events)


#: what an edge of the network carries: ``feedforward`` drives the target's soma (its input; several are
#: concatenated along the channels; none declared: the chain, each area from the one before), ``topdown`` (from a
#: higher area) and ``lateral`` (from a neighbour) reach its dendrite
EDGE_KINDS = ("feedforward", "topdown", "lateral")


@dataclass
class EdgeSpec:
    """One edge of the network (``[[network.edges]]``): ``source`` ("eye" or an area: "layer1", ...) to ``target``
    (an area), of ``kind`` (:data:`EDGE_KINDS`), arriving ``delay_ms`` after the source published. A dendritic
    edge (topdown, lateral) has its own weights, initialised N(0, init_norm^2 / fan_in); a feedforward edge has
    none (its target's weights see it) and ``init_norm`` is unused."""

    source: str = "layer2"
    target: str = "layer1"
    kind: str = "topdown"
    delay_ms: float = 0.0
    init_norm: float = 1.0

    def validate(self, path: str) -> None:
        if self.kind not in EDGE_KINDS:
            raise ConfigError(f"{path}.kind: unknown value {self.kind!r}; valid choices: {', '.join(EDGE_KINDS)}")
        check_positive(self.delay_ms, f"{path}.delay_ms", allow_zero=True)
