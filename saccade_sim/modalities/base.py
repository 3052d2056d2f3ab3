"""The modality plugin contract: raw stimuli -> a tensor store -> glimpses at sampled gazes."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

import numpy as np
import torch

from ..errors import DataError
from ..gaze import GazeSpace


class Deferred:
    """N stimuli not read yet (files of a folder): ``load(key)`` reads one. Subsets only pick keys, so the
    split and the ``train_limit``/``test_limit`` subsets are taken before anything is decoded."""

    def __init__(self, load: Callable[[Any], np.ndarray], keys: Sequence[Any]) -> None:
        self.load, self.keys = load, list(keys)

    def take(self, idx: np.ndarray) -> "Deferred":
        return Deferred(self.load, [self.keys[i] for i in idx])


@dataclass
class RawStimuli:
    """Stimuli as loaded from a source, before the modality turns them into tensors.

    ``x`` is an array [N, ...], a list of N arrays (files of different lengths) or :class:`Deferred` (read by
    :meth:`read`); ``y`` int64 [N]; ``groups`` optional [N] strings (e.g. speakers) for group-held-out
    evaluation.
    """

    x: Any
    y: np.ndarray
    groups: np.ndarray | None = None
    names: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.y)

    def read(self) -> "RawStimuli":
        """These stimuli with :class:`Deferred` ones read (a list of arrays)."""
        return replace(self, x=[self.x.load(k) for k in self.x.keys]) if isinstance(self.x, Deferred) else self

    def subset(self, idx: np.ndarray) -> "RawStimuli":
        if isinstance(self.x, np.ndarray):
            x = self.x[idx]
        else:
            x = self.x.take(idx) if isinstance(self.x, Deferred) else [self.x[i] for i in idx]
        return RawStimuli(
            x, self.y[idx], None if self.groups is None else self.groups[idx],
            [self.names[i] for i in idx] if self.names else [],
        )


class Modality:
    """Base class of modality plugins.

    A subclass sets ``Options`` (a dataclass: the keys of ``[glimpse]``), ``extensions`` (files it reads
    in folders), and implements :meth:`load_file`, :meth:`prepare` (raw -> float store [N, ...]) and
    :meth:`cut` (store, stimulus indices, gaze -> glimpses [B, C, h, w]). ``space`` lists valid gazes.
    """

    Options: ClassVar[type | None] = None
    extensions: ClassVar[tuple[str, ...]] = ()
    name: ClassVar[str] = ""

    def __init__(self, options: Any, stimulus_shape: tuple[int, ...]) -> None:
        self.options = options
        self.stimulus_shape = tuple(stimulus_shape)

    # -- loading -------------------------------------------------------------------------------
    @classmethod
    def load_file(cls, path: Path, options: Any) -> np.ndarray:
        """Decode one file of a folder source (raise DataError naming the file if it is bad)."""
        raise NotImplementedError

    @classmethod
    def flat_label(cls, path: Path) -> str | None:
        """Label of a file in a folder without sub-folders (None: this modality has no default)."""
        return None

    @classmethod
    def unlabelled(cls, items: list[np.ndarray], names: list[str], cfg: Any, options: Any,
                   rng: np.random.Generator) -> Any:
        """A labelled ``datasets.Split`` from a flat folder of unlabelled files (``flat_label`` None)."""
        raise DataError(f"a flat folder of {cls.name} files has no labels: put the files in one sub-folder "
                        "per class or set data.label_pattern")

    @classmethod
    def to_raw(cls, item: Any) -> np.ndarray:
        """One stimulus of a torch ``Dataset`` (a tensor, an array, a PIL image) in the layout this modality's
        files decode to (what :meth:`load_file` returns)."""
        return np.asarray(item.detach().cpu().numpy() if isinstance(item, torch.Tensor) else item)

    @classmethod
    def check_array(cls, x: np.ndarray, where: str) -> None:
        """Validate an array loaded from a ``.npz`` (raise DataError naming ``where``)."""

    @classmethod
    def prepare(cls, raw: RawStimuli, options: Any) -> torch.Tensor:
        """Raw stimuli -> float32 store [N, ...] of equal-shaped stimuli."""
        raise NotImplementedError

    # -- glimpses ------------------------------------------------------------------------------
    @property
    def space(self) -> GazeSpace:
        raise NotImplementedError

    @property
    def glimpse_shape(self) -> tuple[int, int, int]:
        raise NotImplementedError

    def cut(self, store: torch.Tensor, idx: torch.Tensor, gaze: torch.Tensor,
            view: torch.Tensor | None = None) -> torch.Tensor:
        """Glimpses [B, C, ...] of stimuli ``idx`` [B] at gazes [B, D], seen through ``view`` [B, V] (the
        presentation's parameters, :meth:`sample_view`; None: the evaluation view)."""
        raise NotImplementedError

    @property
    def view_size(self) -> int:
        """Parameters V of a presentation's view (a random crop's offset, a flip); 0: every presentation
        shows the stimulus the same way (the default)."""
        return 0

    def sample_view(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """[n, V] long: the views of n new presentations (sampled once per presentation, then applied by
        :meth:`cut` to every glimpse of it, as torchvision samples a transform's parameters, then applies them)."""
        return torch.zeros(n, 0, dtype=torch.long)

    def grid_glimpses(self, store: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Every gaze-grid glimpse of the stimuli ``idx``, stimulus after stimulus: [len(idx) * grid, ...]."""
        grid = self.space.grid.to(store.device)
        return self.cut(store, idx.to(store.device).repeat_interleave(len(grid)), grid.repeat(len(idx), 1))


def grid_positions(size: int, patch: int, stride: int) -> list[int]:
    """Top-left offsets of patches along one axis.

    ``stride > 0``: 0, stride, 2*stride, ... while the patch fits. ``stride == 0``: evenly spaced offsets
    from 0 to ``size - patch`` (both ends included), about ``patch // 2`` apart, so the grid covers the
    whole axis (64 px with 16-px patches -> 7 offsets 8 px apart; 28 px -> 0, 6, 12).
    """
    if stride > 0:
        return list(range(0, size - patch + 1, stride))
    span = size - patch
    n = int(np.ceil(span / max(patch // 2, 1))) + 1 if span > 0 else 1
    return [int(round(v)) for v in np.linspace(0, span, n)]


def gather_patches(store: torch.Tensor, idx: torch.Tensor, corner: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """Boxes of ``size`` from ``store`` [N, C, *S] in one advanced-indexing gather.

    ``out[b, c, i_1, ..., i_D] = store[idx[b], c, corner[b, 1] + i_1, ..., corner[b, D] + i_D]``;
    ``idx`` [B], ``corner`` [B, D] (long, in bounds) -> [B, C, *size].
    """
    b, d = corner.shape
    index = [idx.view(b, *([1] * d))]
    for k, n in enumerate(size):
        shape = [b] + [1] * d
        shape[1 + k] = n
        index.append((corner[:, k:k + 1] + torch.arange(n, device=corner.device)).view(shape))
    return store[(index[0], slice(None), *index[1:])].movedim(-1, 1).contiguous()  # [B, *size, C] -> [B, C, *size]
