"""What every dataset adapter shares: the :class:`Split` it returns, the class split of labels and the
guarded reading of one file (:mod:`saccade_sim.datasets`, :mod:`saccade_sim.audio_datasets`)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DataError
from .modalities.base import Modality, RawStimuli


@dataclass
class Split:
    train: RawStimuli
    test: RawStimuli
    classes: list[str]
    unlabelled: RawStimuli | None = None  #: training stimuli without labels (the eyes may see them; the probe never)


def stratified_split(y: np.ndarray, test_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per class, a random ``test_fraction`` (at least one item where a class has two) goes to test."""
    train, test = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n = int(round(len(idx) * test_fraction))
        n = min(max(n, 1 if len(idx) > 1 else 0), len(idx) - 1)
        test.extend(idx[:n])
        train.extend(idx[n:])
    return np.sort(np.array(train, dtype=np.int64)), np.sort(np.array(test, dtype=np.int64))


def class_labels(names: list[str]) -> tuple[np.ndarray, list[str]]:
    """Class indices of ``names`` and the sorted class names (numeric names in numeric order)."""
    classes = sorted(set(names), key=lambda s: (len(s), s) if s.isdigit() else (0, s))
    lookup = {c: i for i, c in enumerate(classes)}
    return np.array([lookup[n] for n in names], dtype=np.int64), classes


def check_values(x: np.ndarray, where: str) -> None:
    """Stimuli must be numbers and finite (NaN or Inf would silently poison every layer)."""
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise DataError(f"{where}: expected numeric stimuli, got dtype {x.dtype}")
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        raise DataError(f"{where}: contains NaN or Inf values")


def load_file(modality: type[Modality], path: Path, options) -> np.ndarray:
    """``modality.load_file`` with one error contract for every modality: anything a decoder raises
    becomes a DataError naming the file; an empty or non-finite result is refused too."""
    try:
        a = modality.load_file(path, options)
    except DataError:
        raise
    except Exception as exc:  # decoders raise their own types (PIL, soundfile, av, ...)
        raise DataError(f"{path}: cannot read {modality.name} file ({type(exc).__name__}: {exc})") from None
    a = np.asarray(a)
    if a.size == 0:
        raise DataError(f"{path}: empty {modality.name} file")
    check_values(a, str(path))
    return a
