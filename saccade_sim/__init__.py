"""saccade-sim: an event-driven saccade simulation engine for local, biologically plausible learning.

Importing the package is cheap and torch-free; the names below that need torch are loaded on first use,
after :func:`saccade_sim.compat.require_torch` has checked the installed torch.
"""
from importlib import import_module

from .errors import ConfigError, DataError, DivergenceError, SaccadeSimError
from .registry import DATASETS, MODALITIES, POLICIES, RULES
from .version import __version__

#: public name -> module that defines it (imported on first access)
_LAZY = {"Config": "config", "load": "config", "resolve": "config", "Experiment": "experiment",
         "Glimpse": "events", "Broadcast": "events", "run_sweep": "sweep", "SweepTable": "sweep"}

__all__ = ["Config", "load", "resolve", "Experiment", "Glimpse", "Broadcast", "run_sweep", "SweepTable",
           "SaccadeSimError", "ConfigError", "DataError", "DivergenceError", "DATASETS", "MODALITIES", "POLICIES",
           "RULES", "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        from .compat import require_torch

        require_torch()
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'saccade_sim' has no attribute {name!r}")
