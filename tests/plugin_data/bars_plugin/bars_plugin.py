"""An out-of-tree saccade-sim plugin (used by tests/test_plugins.py): a modality whose glimpse is a band of
rows of a grey image, and a dataset of bars in the top or bottom half. It imports only saccade_sim's
public API and reaches saccade-sim through entry points."""
from dataclasses import dataclass

import numpy as np
import torch

from saccade_sim.datasets import Split
from saccade_sim.modalities import Modality, RawStimuli
from saccade_sim.gaze import GazeSpace


@dataclass
class RowsOptions:
    rows: int = 4  #: glimpse height in rows


class RowsModality(Modality):
    """Grey images; a glimpse is a band of ``rows`` full rows at gaze (y,), scanned top to bottom."""

    Options = RowsOptions
    name = "rows"

    @classmethod
    def prepare(cls, raw, options):
        return torch.from_numpy(np.asarray(raw.x, np.float32))[:, None]

    def __init__(self, options, stimulus_shape):
        super().__init__(options, stimulus_shape)
        h = stimulus_shape[1]
        self._space = GazeSpace(torch.arange(0, h - options.rows + 1, options.rows)[:, None], torch.tensor([h - options.rows]))

    @property
    def space(self):
        return self._space

    @property
    def glimpse_shape(self):
        return (1, self.options.rows, self.stimulus_shape[2])

    def cut(self, store, idx, gaze):
        rows = gaze[:, :1] + torch.arange(self.options.rows)
        return store[idx[:, None], :, rows].permute(0, 2, 1, 3)


def bars(cfg, modality, options, rng):
    """A bright 2-row bar in the top (label 0) or bottom (label 1) half of a noisy 16x16 image."""
    def make(n):
        y = rng.integers(0, 2, n)
        top = rng.integers(0, 7, n) + 8 * y
        x = 0.3 * rng.standard_normal((n, 16, 16)).astype(np.float32)
        for i in range(n):
            x[i, top[i]:top[i] + 2] += 1.0
        return RawStimuli(x, y.astype(np.int64))

    return Split(make(120), make(60), ["top", "bottom"])
