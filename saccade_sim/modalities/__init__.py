"""Modality plugins (image; more register through ``saccade_sim.registry.MODALITIES``)."""
from .base import Modality, RawStimuli, grid_positions

__all__ = ["Modality", "RawStimuli", "grid_positions"]
