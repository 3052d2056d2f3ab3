"""A modality plugin: glimpses that are horizontal strips of an image, read top to bottom like lines of text.

    python examples/custom_modality.py [--data PATH.npz] [--events N] [--out DIR]

A modality turns raw stimuli into a tensor store (``prepare``), says where an eye may look (``space``: the gaze
grid, in raster order) and cuts glimpses at gazes (``cut``). Layers and rules only see glimpses [B, C, h, w], so
every rule runs on the new modality unchanged.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np
import torch

import saccade_sim as ss
from saccade_sim.analysis.probe import probe_table
from saccade_sim.errors import ConfigError, DataError
from saccade_sim.modalities.base import Modality, RawStimuli, gather_patches, grid_positions
from saccade_sim.gaze import GazeSpace


@dataclass
class StripOptions:
    rows: int = 6  #: strip height in pixels (the glimpse is rows x the image's width)
    stride: int = 3  #: rows between successive strips

    def validate(self, path: str) -> None:
        if self.rows <= 0 or self.stride <= 0:
            raise ConfigError(f"{path}.rows and {path}.stride: must be > 0, got {self.rows}, {self.stride}")


@ss.MODALITIES.register("strips")
class Strips(Modality):
    """Grey images; a glimpse is a full-width strip of ``rows`` rows; saccades move down the image."""

    Options = StripOptions
    name = "strips"

    @classmethod
    def check_array(cls, x: np.ndarray, where: str) -> None:
        if x.ndim != 3:
            raise DataError(f"{where}: expected grey images [N, H, W], got shape {x.shape}")

    @classmethod
    def prepare(cls, raw: RawStimuli, options: StripOptions) -> torch.Tensor:
        """uint8 [N, H, W] -> float [N, 1, H, W] in [0, 1]."""
        return torch.from_numpy(np.asarray(raw.x, dtype=np.float32) / 255.0)[:, None].contiguous()

    def __init__(self, options: StripOptions, stimulus_shape: tuple[int, ...]) -> None:
        super().__init__(options, stimulus_shape)
        _, h, _ = stimulus_shape
        if options.rows > h:
            raise ConfigError(f"glimpse.rows: {options.rows} is more than the images' {h} rows")
        tops = grid_positions(h, options.rows, options.stride)
        grid = torch.tensor([(t, 0) for t in tops], dtype=torch.long)  # gaze = (first row, first column)
        self._space = GazeSpace(grid, torch.tensor([h - options.rows, 0]))

    @property
    def space(self) -> GazeSpace:
        return self._space

    @property
    def glimpse_shape(self) -> tuple[int, int, int]:
        return (1, self.options.rows, self.stimulus_shape[2])

    def cut(self, store: torch.Tensor, idx: torch.Tensor, gaze: torch.Tensor) -> torch.Tensor:
        return gather_patches(store, idx, gaze, self.glimpse_shape[1:])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/mnist5k.npz")
    ap.add_argument("--events", type=int, default=300)
    ap.add_argument("--out", default="runs/strips")
    args = ap.parse_args()
    exp = ss.Experiment({
        "data": {"modality": "strips", "source": args.data},
        "glimpse": {"rows": 6, "stride": 3},
        "network": {"layers": [{"kind": "conv", "channels": 16, "kernel": 3, "pool": 2}]},
        "rule": {"name": "oja", "competition": "kwta", "k": 1, "threshold_rate": 0.01},
        "run": {"events": args.events},
        "probe": {"train": 500, "test": 300},
    })
    print(f"{exp.modality.space.size} strips of {exp.modality.glimpse_shape} per image")
    results = exp.run()
    exp.save(args.out)
    print(probe_table(results))


if __name__ == "__main__":
    main()
