"""Audio modality: waveforms -> log-mel spectrograms; a glimpse is a time window (all mel bands, or a
band x time patch) at gaze (band, frame); saccades move along time."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, DataError
from ..gaze import GazeSpace
from ..registry import MODALITIES
from .base import Modality, RawStimuli, gather_patches, grid_positions


@dataclass
class AudioOptions:
    sample_rate: int = 8000  #: every clip is resampled to this rate (Hz); .npz waveforms are taken to be at it
    duration: float = 1.0  #: seconds: every clip is cropped or zero-padded to this length
    align: str = "center"  #: where a clip sits in the fixed duration: "center" or "start"
    short: str = "pad"  #: clips shorter than ``duration``: "pad" with zeros, or "error"
    n_fft: int = 256  #: FFT window (samples)
    hop: int = 80  #: samples between spectrogram frames
    n_mels: int = 40  #: mel bands
    log: bool = True  #: log(mel + 1e-6) instead of mel power
    frames: int = 16  #: glimpse width in spectrogram frames
    stride: int = 0  #: frames between glimpses (0 = even spacing about frames/2 apart covering the clip)
    bands: int = 0  #: glimpse height in mel bands (0 = all bands: a pure time window)

    def validate(self, path: str) -> None:
        for name in ("sample_rate", "n_fft", "hop", "n_mels", "frames"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{path}.{name}: must be > 0, got {getattr(self, name)}")
        if self.duration <= 0:
            raise ConfigError(f"{path}.duration: must be > 0, got {self.duration}")
        if self.stride < 0 or self.bands < 0:
            raise ConfigError(f"{path}.{'stride' if self.stride < 0 else 'bands'}: must be >= 0")
        if self.bands > self.n_mels:
            raise ConfigError(f"{path}.bands: {self.bands} is more than n_mels ({self.n_mels})")
        for name, choices in (("align", ("center", "start")), ("short", ("pad", "error"))):
            if getattr(self, name) not in choices:
                raise ConfigError(f"{path}.{name}: unknown value {getattr(self, name)!r}; "
                                  f"valid choices: {', '.join(choices)}")


def to_mono(wave: np.ndarray, sample_rate: int, target_rate: int) -> np.ndarray:
    """[S] or [S, channels] at ``sample_rate`` -> float32 mono [S'] at ``target_rate``: the channel mean,
    int16 scaled by 1/32768, resampled with torchaudio's windowed-sinc ``resample``."""
    a = np.asarray(wave)
    a = a.astype(np.float32) / 32768.0 if a.dtype == np.int16 else a.astype(np.float32)
    if a.ndim == 2:
        a = a.mean(1)
    if sample_rate != target_rate:
        import torchaudio.functional as AF

        a = AF.resample(torch.from_numpy(a), sample_rate, target_rate).numpy()
    return a


def fit_length(wave: np.ndarray, length: int, align: str) -> np.ndarray:
    """Crop or zero-pad [S] to ``length`` samples, keeping the clip centred ("center") or at 0 ("start")."""
    n = len(wave)
    offset = (abs(length - n) // 2) if align == "center" else 0
    if n >= length:
        return wave[offset:offset + length]
    out = np.zeros(length, np.float32)
    out[offset:offset + n] = wave
    return out


def log_mel(waves: torch.Tensor, o: AudioOptions) -> torch.Tensor:
    """[N, S] -> [N, 1, n_mels, frames]: mel power spectrogram (torchaudio), then log(mel + 1e-6) if ``log``."""
    import torchaudio.transforms as AT

    mel = AT.MelSpectrogram(o.sample_rate, n_fft=o.n_fft, hop_length=o.hop, n_mels=o.n_mels)(waves)
    return (torch.log(mel + 1e-6) if o.log else mel)[:, None].contiguous()


@MODALITIES.register("audio")
class AudioModality(Modality):
    """Waveforms as log-mel spectrograms; a glimpse is a window of frames (all or some mel bands)."""

    Options = AudioOptions
    extensions = (".wav", ".flac", ".ogg", ".aiff", ".aif")
    name = "audio"

    @classmethod
    def load_file(cls, path: Path, options: AudioOptions) -> np.ndarray:
        import soundfile

        try:
            wave, rate = soundfile.read(str(path), always_2d=True, dtype="float32")
        except (soundfile.LibsndfileError, RuntimeError, ValueError) as exc:
            raise DataError(f"{path}: cannot decode audio ({exc})") from None
        if len(wave) == 0:
            raise DataError(f"{path}: empty audio file (0 samples)")
        return to_mono(wave, rate, options.sample_rate)

    @classmethod
    def flat_label(cls, path: Path) -> str:
        """``7_george_3.wav`` -> ``7``: the file name's first field before ``_`` (FSDD, Speech Commands)."""
        return path.stem.split("_")[0]

    @classmethod
    def check_array(cls, x: np.ndarray, where: str) -> None:
        if x.ndim not in (2, 3):
            raise DataError(f"{where}: expected waveforms [N, samples] or [N, samples, channels], got shape {x.shape}")
        if not (x.dtype == np.int16 or np.issubdtype(x.dtype, np.floating)):
            raise DataError(f"{where}: expected int16 or float waveforms, got dtype {x.dtype}")

    @classmethod
    def prepare(cls, raw: RawStimuli, options: AudioOptions) -> torch.Tensor:
        length = int(round(options.duration * options.sample_rate))
        waves = []
        for i, w in enumerate(raw.x):
            w = to_mono(w, options.sample_rate, options.sample_rate)
            if len(w) < length and options.short == "error":
                name = raw.names[i] if raw.names else f"item {i}"
                raise DataError(f"{name}: {len(w) / options.sample_rate:.3f} s is shorter than glimpse.duration "
                                f"({options.duration} s); set glimpse.short = \"pad\" to zero-pad short clips")
            waves.append(fit_length(w, length, options.align))
        return log_mel(torch.from_numpy(np.stack(waves)), options)

    def __init__(self, options: AudioOptions, stimulus_shape: tuple[int, ...]) -> None:
        super().__init__(options, stimulus_shape)
        _, n_mels, n_frames = stimulus_shape
        if options.frames > n_frames:
            raise ConfigError(f"glimpse.frames: {options.frames} frames is longer than the clips ({n_frames} frames "
                              f"= glimpse.duration {options.duration} s at hop {options.hop})")
        self.bands = options.bands or n_mels
        fs = grid_positions(n_mels, self.bands, self.bands)
        ts = grid_positions(n_frames, options.frames, options.stride)
        # raster order: time runs along each band (band outer, frame inner)
        grid = torch.tensor([(f, t) for f in fs for t in ts], dtype=torch.long)
        self._space = GazeSpace(grid, torch.tensor([n_mels - self.bands, n_frames - options.frames]))

    @property
    def space(self) -> GazeSpace:
        return self._space

    @property
    def glimpse_shape(self) -> tuple[int, int, int]:
        return (1, self.bands, self.options.frames)

    def cut(self, store: torch.Tensor, idx: torch.Tensor, gaze: torch.Tensor,
            view: torch.Tensor | None = None) -> torch.Tensor:
        """``store`` [N, 1, n_mels, T], ``gaze`` [B, 2] (first band, first frame) -> [B, 1, bands, frames]."""
        return gather_patches(store, idx, gaze, (self.bands, self.options.frames))
