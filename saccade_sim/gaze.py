"""The gaze space of a modality: where an eye can fixate, and the geometry rules use to pair fixations."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class GazeSpace:
    """Valid fixations of a modality: ``grid`` [G, D] in raster order, ``high`` [D] inclusive maxima.

    The grid is a lattice: each coordinate takes a few values, and the raster walks its innermost
    :attr:`axis` first (an image's rows within a column; an utterance's time). :meth:`before` and
    :meth:`cells` give its geometry to rules that pair glimpses by where they were taken (CLAPP)."""

    grid: torch.Tensor
    high: torch.Tensor

    @property
    def size(self) -> int:
        return self.grid.shape[0]

    @property
    def axis(self) -> int:
        """The coordinate that changes between the first two raster fixations (0 for a one-point grid)."""
        if self.size < 2:
            return 0
        return int((self.grid[1] != self.grid[0]).nonzero()[0, 0])

    def before(self, k: int) -> torch.Tensor:
        """[G] long: the grid index of the point ``k`` lattice steps before each grid point along
        :attr:`axis`, every other coordinate equal (-1 where there is none)."""
        ranks = torch.stack([torch.unique(c, return_inverse=True)[1] for c in self.grid.t()], 1)  # [G, D]
        wanted = ranks.clone()
        wanted[:, self.axis] -= k
        match = (wanted[:, None, :] == ranks[None, :, :]).all(-1)  # [G, G]: point i's predecessor is j
        return torch.where(match.any(1), match.float().argmax(1), -1)

    def cells(self, gaze: torch.Tensor) -> torch.Tensor:
        """[B] long: the grid index of each gaze [B, D] (-1 for a gaze off the grid); ``gaze`` on the grid's device
        (a rule keeps its space on its own device, so no event copies the grid)."""
        match = (gaze[:, None, :] == self.grid[None]).all(-1)  # [B, G]
        return torch.where(match.any(1), match.float().argmax(1), -1)
