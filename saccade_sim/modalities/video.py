"""Video modality: clips [C, T, H, W]; a glimpse is a spatio-temporal patch at gaze (t, y, x).

Layers see [B, C, h, w] tensors, so a glimpse of ``frames`` frames is folded into channels, time-major:
channel ``t * C + c`` holds colour channel ``c`` of the glimpse's frame ``t`` -> [B, frames * C, p, p].
The raster order advances with the clip's own time (time outer, then space as for images).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, DataError
from ..gaze import GazeSpace
from ..registry import MODALITIES
from ..retina import check_retina, foveate_frames, retina_channels
from .base import Modality, RawStimuli, gather_patches, grid_positions
from .image import set_color


@dataclass
class VideoOptions:
    patch: int = 16  #: glimpse side in pixels
    stride: int = 0  #: spatial grid step (0 = even spacing about patch/2 apart covering the frame)
    frames: int = 4  #: frames per glimpse (folded into channels)
    frame_stride: int = 0  #: frames between glimpses in time (0 = even spacing about frames/2 apart)
    clip_frames: int = 16  #: frames kept per clip (the first ones); a shorter clip is an error naming it
    fps: float = 0.0  #: decoded files are resampled to this frame rate (0 = keep each file's own)
    size: int = 0  #: decoded frames: shorter side scaled to ``size``, centre-cropped square (0 = keep)
    color: str = "auto"  #: "gray", "rgb" or "auto" (keep what the source has)
    retina: str = "none"  #: foveated frames: "none" (the plain patch), "multires" or "logpolar" (saccade_sim.retina)
    retina_levels: int = 3  #: multires: concentric patches of sides patch * retina_scale^i (logpolar: its field)
    retina_scale: int = 2  #: side ratio of consecutive multires patches

    def validate(self, path: str) -> None:
        check_retina(self, path)
        for name in ("patch", "frames", "clip_frames"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{path}.{name}: must be > 0, got {getattr(self, name)}")
        for name in ("stride", "frame_stride", "size", "fps"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{path}.{name}: must be >= 0, got {getattr(self, name)}")
        if self.frames > self.clip_frames:
            raise ConfigError(f"{path}.frames: {self.frames} is more than {path}.clip_frames ({self.clip_frames})")
        if self.color not in ("gray", "rgb", "auto"):
            raise ConfigError(f"{path}.color: unknown value {self.color!r}; valid choices: gray, rgb, auto")


def resample_frames(n_frames: int, source_fps: float, target_fps: float) -> np.ndarray:
    """Indices of the source frames shown at times k / target_fps: frame floor(k * source / target),
    for every k whose time falls inside the clip (nearest earlier frame; drops or repeats frames)."""
    n_out = int(np.floor(n_frames * target_fps / source_fps + 1e-9))
    return np.minimum(np.floor(np.arange(n_out) * source_fps / target_fps + 1e-9).astype(np.int64), n_frames - 1)


def decode(path: Path, size: int, gray: bool) -> tuple[np.ndarray, float]:
    """All frames of a file with PyAV -> (uint8 [T, H, W, C], frames per second); frames scaled so the
    shorter side is ``size`` and centre-cropped square when ``size`` > 0."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DataError(f"{path}: no video stream")
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 0)
            frames = []
            for frame in container.decode(stream):
                if size:
                    s = size / min(frame.width, frame.height)
                    frame = frame.reformat(width=max(size, round(frame.width * s)),
                                           height=max(size, round(frame.height * s)))
                a = frame.to_ndarray(format="gray" if gray else "rgb24")
                if size:
                    top, left = (a.shape[0] - size) // 2, (a.shape[1] - size) // 2
                    a = a[top:top + size, left:left + size]
                frames.append(a if a.ndim == 3 else a[..., None])
    except av.FFmpegError as exc:
        raise DataError(f"{path}: cannot decode video ({exc})") from None
    if not frames:
        raise DataError(f"{path}: no video frames")
    if fps <= 0:
        raise DataError(f"{path}: unknown frame rate")
    return np.stack(frames), fps


@MODALITIES.register("video")
class VideoModality(Modality):
    """Video clips; a glimpse is a frames x patch x patch box at (t, y, x), time folded into channels."""

    Options = VideoOptions
    extensions = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".mpg", ".mpeg")
    name = "video"

    @classmethod
    def load_file(cls, path: Path, options: VideoOptions) -> np.ndarray:
        clip, fps = decode(path, options.size, options.color == "gray")
        if options.fps:
            clip = clip[resample_frames(len(clip), fps, options.fps)]
        if len(clip) < options.clip_frames:
            raise DataError(f"{path}: {len(clip)} frames at {options.fps or fps:g} fps, fewer than "
                            f"glimpse.clip_frames ({options.clip_frames})")
        return clip

    @classmethod
    def check_array(cls, x: np.ndarray, where: str) -> None:
        if x.ndim not in (4, 5) or (x.ndim == 5 and x.shape[-1] not in (1, 3)):
            raise DataError(f"{where}: expected clips [N,T,H,W] or [N,T,H,W,C] with C in 1/3, got shape {x.shape}")
        if not (x.dtype == np.uint8 or np.issubdtype(x.dtype, np.floating)):
            raise DataError(f"{where}: expected uint8 or float frames, got dtype {x.dtype}")

    @classmethod
    def unlabelled(cls, items, names, cfg, options, rng):
        """Unlabelled videos: segments labelled by clip (:func:`clip_segments`)."""
        return clip_segments(items, names, cfg, options.clip_frames, rng)

    @classmethod
    def prepare(cls, raw: RawStimuli, options: VideoOptions) -> torch.Tensor:
        """Clips (uint8/float [T, H, W] or [T, H, W, C]) -> float [N, C, clip_frames, H, W] in [0, 1]."""
        k = options.clip_frames
        lengths = [c.shape[0] for c in raw.x]
        for i, n in enumerate(lengths):
            if n < k:
                name = raw.names[i] if raw.names else f"clip {i}"
                raise DataError(f"{name}: {n} frames, fewer than glimpse.clip_frames ({k})")
        if isinstance(raw.x, np.ndarray):
            x = raw.x[:, :k]
        else:
            shapes = {c.shape[1:] for c in raw.x}
            if len(shapes) > 1:
                raise DataError(f"clips differ in frame size ({sorted(shapes)[:3]} ...); set glimpse.size to resize them")
            x = np.stack([c[:k] for c in raw.x])
        x = torch.from_numpy(np.ascontiguousarray(x))
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        x = (x[..., None] if x.ndim == 4 else x).permute(0, 4, 1, 2, 3)  # [N, C, T, H, W]
        n, c, t, h, w = x.shape
        x = set_color(x.transpose(1, 2).reshape(n * t, c, h, w), options.color)
        return x.reshape(n, t, -1, h, w).transpose(1, 2).contiguous()

    def __init__(self, options: VideoOptions, stimulus_shape: tuple[int, ...]) -> None:
        super().__init__(options, stimulus_shape)
        _, t, h, w = stimulus_shape
        p, f = options.patch, options.frames
        if p > h or p > w:
            raise ConfigError(f"glimpse.patch: {p} is larger than the frames ({h}x{w} pixels)")
        ts = grid_positions(t, f, options.frame_stride)
        ys, xs = grid_positions(h, p, options.stride), grid_positions(w, p, options.stride)
        grid = torch.tensor([(s, y, x) for s in ts for x in xs for y in ys], dtype=torch.long)
        self._space = GazeSpace(grid, torch.tensor([t - f, h - p, w - p]))

    @property
    def space(self) -> GazeSpace:
        return self._space

    @property
    def glimpse_shape(self) -> tuple[int, int, int]:
        channels = self.stimulus_shape[0] * self.options.frames * retina_channels(self.options)
        return (channels, self.options.patch, self.options.patch)

    def cut(self, store: torch.Tensor, idx: torch.Tensor, gaze: torch.Tensor,
            view: torch.Tensor | None = None) -> torch.Tensor:
        """``store`` [N, C, T, H, W], ``gaze`` [B, 3] (t, y, x) -> [B, frames * C, p, p] (time-major channels)."""
        o = self.options
        if o.retina != "none":
            return foveate_frames(store[idx], gaze, o)
        box = gather_patches(store, idx, gaze, (o.frames, o.patch, o.patch))  # [B, C, f, p, p]
        return box.transpose(1, 2).flatten(1, 2)


def clip_segments(clips: list[np.ndarray], names: list[str], cfg, clip_frames: int, rng: np.random.Generator):
    """Labelled segments from unlabelled videos: ``clip_frames`` frames x ``data.crop_size`` squares,
    label = which video. Train segments start in the first ``1 - test_fraction`` of each video's time and
    end before the test part begins; test segments lie in the last part, so no test frame is seen in
    training. ``data.crops_per_photo`` segments per video (train + test)."""
    from ..splits import Split

    if len({c.shape[-1] for c in clips}) > 1:
        raise DataError("videos mix grey and colour frames; set glimpse.color")
    s = cfg.crop_size
    n_test = max(1, int(round(cfg.crops_per_photo * cfg.test_fraction)))
    parts = {"train": ([], []), "test": ([], [])}
    for label, (clip, name) in enumerate(zip(clips, names)):
        t, h, w = clip.shape[:3]
        cut = int(round(t * (1 - cfg.test_fraction)))
        if cut < clip_frames or t - cut < clip_frames or min(h, w) < s:
            raise DataError(f"{name}: {t} frames of {h}x{w} are too few to cut train and test segments of "
                            f"glimpse.clip_frames ({clip_frames}) frames x data.crop_size ({s}) pixels "
                            f"(data.test_fraction {cfg.test_fraction})")
        for part, n, lo, hi in (("train", cfg.crops_per_photo - n_test, 0, cut - clip_frames),
                                ("test", n_test, cut, t - clip_frames)):
            for start, top, left in zip(rng.integers(lo, hi + 1, n), rng.integers(0, h - s + 1, n),
                                        rng.integers(0, w - s + 1, n)):
                parts[part][0].append(clip[start:start + clip_frames, top:top + s, left:left + s])
                parts[part][1].append(label)
    train, test = (RawStimuli(np.stack(x), np.array(y, np.int64)) for x, y in parts.values())
    return Split(train, test, list(names))
